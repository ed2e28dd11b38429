// Starts the app: signed in (a session cookie or a token) shows the chats, otherwise the
// sign-in; `#/c/<id>` opens a chat and `#/shared/<token>` a shared one, read-only.
import { api, auth, describe } from "./api.js";
import { createChat, downloadExport, messageBody } from "./chat.js";
import { confirmAction } from "./dialogs.js";
import { h } from "./dom.js";
import { createSidebar } from "./sidebar.js";

const $ = (id) => document.getElementById(id);
const USER_KEY = "buddahbot.user";

function setError(message) {
  $("error").hidden = !message;
  $("error").textContent = message ?? "";
}

const sidebar = createSidebar({ onError: setError });
const chat = createChat({ sidebar, setError });

// A shared link always shows the shared view, even if a sign-in check started earlier ends
// after it.
function show(screen) {
  if (location.hash.startsWith("#/shared/") && screen !== "shared") return;
  for (const id of ["signin", "app", "shared"]) $(id).hidden = id !== screen;
}

// The user id of an HS256 token (its payload is readable); an Auth.js session is encrypted.
function tokenUser(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    return null;
  }
}

async function signedIn() {
  try {
    await api.threads({ limit: 1 });
    return true;
  } catch (error) {
    if (error.status === 401) return false;
    throw error;
  }
}

async function showSignIn(message = "") {
  show("signin");
  $("signin-error").textContent = message;
  $("dev-signin").hidden = !(await api.devSignIn());
  ($("dev-signin").hidden ? $("token") : $("dev-user")).focus();
}

async function start() {
  let ok;
  try {
    ok = await signedIn();
  } catch (error) {
    show("signin");
    $("signin-error").textContent = describe(error);
    return;
  }
  if (!ok) {
    auth.token = null;
    return showSignIn();
  }
  show("app");
  const user = (auth.token && tokenUser(auth.token)) || sessionStorage.getItem(USER_KEY);
  $("who").textContent = user ? `Signed in as ${user}` : "Signed in";
  await Promise.all([
    sidebar.refresh().catch((error) => setError(describe(error))),
    chat.loadModels().catch((error) => setError(describe(error))),
  ]);
  await route();
}

async function showShared(token) {
  show("shared");
  const list = $("shared-messages");
  try {
    const snapshot = await api.shared(token);
    $("shared-title").textContent = snapshot.title;
    document.title = `${snapshot.title} · shared · BuddahBot`;
    $("shared-info").textContent = `Shared ${new Date(snapshot.sharedAt).toLocaleString()}`;
    list.replaceChildren(
      ...snapshot.messages
        .filter((m) => m.role === "user" || m.role === "assistant")
        .map((m) => h("article", { class: `message ${m.role}`, "aria-label": m.role === "user" ? "You" : "BuddahBot" },
          h("div", { class: "who" }, m.role === "user" ? "Them" : "BuddahBot"), messageBody(m))),
    );
    $("shared-copy").hidden = !(await signedIn().catch(() => false));
    $("shared-copy").onclick = async () => {
      const copy = await api.copyShared(token);
      location.hash = `#/c/${encodeURIComponent(copy.id)}`;
    };
  } catch (error) {
    $("shared-title").textContent = "This link does not work";
    $("shared-info").textContent = error.status === 404 ? "It was revoked, it expired, or the chat was deleted." : describe(error);
    list.replaceChildren();
  }
}

async function route() {
  const [, kind, value] = /^#\/(c|shared)\/(.+)$/.exec(location.hash) ?? [];
  document.body.classList.remove("show-sidebar");
  if (kind === "shared") return showShared(decodeURIComponent(value));
  if ($("app").hidden) return start();
  return chat.open(kind === "c" ? decodeURIComponent(value) : null);
}

window.addEventListener("hashchange", route);

$("dev-signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = $("dev-user").value.trim();
  try {
    await api.devSession(user);
    auth.token = null;
    sessionStorage.setItem(USER_KEY, user);
    await start();
  } catch (error) {
    $("signin-error").textContent = describe(error);
  }
});

$("token-signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  auth.token = $("token").value.trim();
  $("token").value = "";
  if (await signedIn().catch(() => false)) {
    sessionStorage.removeItem(USER_KEY);
    await start();
  } else {
    auth.token = null;
    $("signin-error").textContent = "That token was not accepted.";
  }
});

$("sign-out").addEventListener("click", async () => {
  auth.token = null;
  sessionStorage.removeItem(USER_KEY);
  await api.devSession(null).catch(() => {});
  history.replaceState(null, "", "/");
  location.reload();
});

$("new-chat").addEventListener("click", () => {
  if (location.hash) location.hash = "";
  else chat.open(null);
});

$("delete-all").addEventListener("click", async () => {
  const sure = await confirmAction({
    title: "Delete all chats",
    message: "Every chat you have, archived ones too, will be deleted for good.",
    confirm: "Delete all chats",
  });
  if (!sure) return;
  try {
    await api.removeAll();
    location.hash = "";
    await sidebar.refresh();
    await chat.open(null);
  } catch (error) {
    setError(describe(error));
  }
});

$("export-all").addEventListener("click", () =>
  downloadExport("/api/export?format=markdown", "chats.md").catch((error) => setError(describe(error))),
);

$("open-sidebar").addEventListener("click", () => {
  document.body.classList.add("show-sidebar");
  $("search").focus();
});
$("close-sidebar").addEventListener("click", () => document.body.classList.remove("show-sidebar"));
$("threads").addEventListener("click", (event) => {
  if (event.target.closest("a")) document.body.classList.remove("show-sidebar");
});

route();
