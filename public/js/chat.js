// The chat view: the active branch of a thread, the reply streaming in as it arrives, and
// what can be done to a message (copy, edit, regenerate, switch versions, rate) or to the
// thread (rename, pin, archive, tags, share, export, delete). Every change goes through the
// public API; after a turn the thread is read again, so what shows is what is stored.
import { api, describe } from "./api.js";
import { ask, confirmAction, modal } from "./dialogs.js";
import { h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { applyChunk, newReply, readEvents } from "./stream.js";

const $ = (id) => document.getElementById(id);
const PAGE = 100;
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MODEL_KEY = "buddahbot.model";

export const shareUrl = (token) => `${location.origin}/#/shared/${encodeURIComponent(token)}`;

const textOf = (m) => m.content ?? "";
const shown = (m) => m.role === "user" || m.role === "assistant";

// A stored message as the AI SDK's UIMessage, for the history a turn sends.
const toUi = (m) => {
  const parts = (m.parts ?? []).filter((p) => p.type === "text" || p.type === "file");
  return { id: m.id, role: m.role, parts: parts.length ? parts : [{ type: "text", text: textOf(m) }] };
};

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", { value: text, "aria-hidden": "true", class: "visually-hidden" });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}

async function save(response, fallback) {
  const disposition = response.headers.get("content-disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallback;
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function downloadExport(path, fallback) {
  return api.download(path).then((response) => save(response, fallback));
}

// Files of a message: images shown, other files named.
function files(parts = []) {
  const list = parts.filter((p) => p.type === "file");
  if (!list.length) return null;
  return h(
    "div",
    { class: "files" },
    list.map((f) =>
      f.mediaType?.startsWith("image/") && f.url?.startsWith("data:")
        ? h("img", { src: f.url, alt: f.filename ?? "image" })
        : h("span", { class: "file" }, `Attached: ${f.filename ?? f.mediaType}`),
    ),
  );
}

// How long a reply thought, told from its timings: its share of the reply's time, as its
// share of the text (the model writes both at the same pace).
function thoughtFor(m) {
  const total = (m.reasoning?.length ?? 0) + (m.content?.length ?? 0);
  if (!m.durationMs || !total) return "Thought for a moment";
  const seconds = Math.max(1, Math.round((m.durationMs * m.reasoning.length) / total / 1000));
  return `Thought for ${seconds} s`;
}

// A reply's reasoning, collapsed under a one-line summary (plain text, never markup).
function reasoning(m, live) {
  if (!m.reasoning) return null;
  const label = live ? (m.content ? "Thought" : "Thinking…") : thoughtFor(m);
  return h("details", { class: "reasoning" }, h("summary", {}, label), h("div", { class: "thoughts" }, m.reasoning));
}

// One message, read-only (also the shared view's).
export function messageBody(m) {
  const body = h("div", { class: "body" });
  if (m.role === "assistant") renderMarkdown(body, textOf(m));
  else body.textContent = textOf(m);
  return body;
}

export function createChat({ sidebar, setError }) {
  const list = $("messages");
  const input = $("input");
  const state = { id: null, thread: null, messages: [], before: null, reply: null, pending: [] };
  let drawQueued = false;

  const label = (m) => (m.role === "user" ? "You" : "BuddahBot");

  function versions(m) {
    if (!m.branch || m.branch.count < 2) return null;
    const { index, count } = m.branch;
    return h(
      "span",
      { class: "versions", role: "group", "aria-label": "Versions" },
      h("button", { type: "button", class: "icon", "aria-label": "Previous version", disabled: index === 0, onclick: () => switchTo(m, index - 1) }, "<"),
      h("span", { class: "count" }, `${index + 1}/${count}`),
      h("button", { type: "button", class: "icon", "aria-label": "Next version", disabled: index === count - 1, onclick: () => switchTo(m, index + 1) }, ">"),
    );
  }

  function actions(m) {
    const busy = Boolean(state.reply);
    const rating = m.feedback?.rating;
    const copy = h("button", { type: "button", onclick: async () => {
      await copyText(textOf(m));
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy"), 1500);
    } }, "Copy");
    const own = m.role === "user"
      ? [h("button", { type: "button", disabled: busy, onclick: () => startEdit(m) }, "Edit")]
      : [
          h("button", { type: "button", disabled: busy, onclick: () => regenerate(m) }, "Regenerate"),
          h("button", { type: "button", class: "icon", "aria-label": "Good reply", "aria-pressed": String(rating === "up"), onclick: () => rate(m, rating === "up" ? null : "up") }, "Good"),
          h("button", { type: "button", class: "icon", "aria-label": "Bad reply", "aria-pressed": String(rating === "down"), onclick: () => rate(m, rating === "down" ? null : "down") }, "Bad"),
        ];
    return h("div", { class: "message-actions" }, versions(m), copy, own);
  }

  function article(m, { live = false } = {}) {
    const status = m.status === "stopped" ? "Stopped" : m.status === "error" || m.finishReason === "error" ? "Ended with an error" : null;
    return h(
      "article",
      { class: `message ${m.role}${live ? " streaming" : ""}`, "data-id": m.id ?? "", "aria-label": label(m) },
      h("div", { class: "who" }, label(m), status ? h("span", { class: "badge" }, status) : null),
      reasoning(m, live),
      messageBody(m),
      files(m.parts),
      live || !m.id ? null : actions(m),
    );
  }

  function draw() {
    const items = state.messages.filter(shown).map((m) => article(m));
    if (state.before) {
      items.unshift(h("button", { type: "button", class: "earlier", onclick: earlier }, "Show earlier messages"));
    }
    if (state.reply) {
      const { text, reasoning: thought } = state.reply;
      items.push(article({ role: "assistant", content: text, reasoning: thought }, { live: true }));
    }
    if (!items.length) items.push(h("p", { class: "empty" }, "Ask anything. Replies stream in as they are written."));
    list.replaceChildren(...items);
    list.setAttribute("aria-busy", String(Boolean(state.reply)));
    $("stop").hidden = !state.reply;
    $("send").disabled = Boolean(state.reply);
    list.scrollTop = list.scrollHeight;
  }

  // While a reply streams, only its bubble is redrawn, at most once a frame.
  function drawReply() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      const live = list.querySelector(".message.streaming .body");
      if (!live || !state.reply) return;
      renderMarkdown(live, state.reply.text);
      list.scrollTop = list.scrollHeight;
    });
  }

  function drawHeader() {
    const t = state.thread;
    $("title").textContent = t?.title || "New chat";
    document.title = t ? `${t.title} · BuddahBot` : "BuddahBot";
    $("thread-actions").hidden = !t;
    $("tags").replaceChildren(...(t?.tags ?? []).map((tag) => h("span", { class: "tag" }, tag)));
    if (!t) return;
    $("pin").textContent = t.pinned ? "Unpin" : "Pin";
    $("pin").setAttribute("aria-pressed", String(t.pinned));
    $("archive").textContent = t.archived ? "Unarchive" : "Archive";
    $("share").textContent = t.share ? "Shared" : "Share";
  }

  async function load() {
    const page = await api.thread(state.id, { limit: PAGE });
    state.thread = page.thread;
    state.messages = page.messages;
    state.before = page.nextCursor;
    drawHeader();
    draw();
    return page.thread;
  }

  async function earlier() {
    try {
      const page = await api.thread(state.id, { limit: PAGE, before: state.before });
      state.messages = [...page.messages, ...state.messages];
      state.before = page.nextCursor;
      draw();
    } catch (error) {
      setError(describe(error));
    }
  }

  // Reads a reply's event stream to its end, then the thread as stored.
  async function follow(response) {
    state.reply = newReply();
    draw();
    try {
      await readEvents(response, (chunk) => {
        applyChunk(state.reply, chunk);
        drawReply();
      });
    } catch (error) {
      setError(`The reply was cut off (${error.message}).`);
    }
    const reply = state.reply;
    state.reply = null;
    if (reply.error) setError(reply.error);
    await load().catch((error) => setError(describe(error)));
    sidebar.refresh().catch(() => {});
  }

  // One turn: `body` is the AI SDK request; the messages shown meanwhile are `showing`.
  async function turn(body, showing) {
    setError(null);
    const fresh = !state.thread;
    const previous = state.messages;
    state.messages = showing;
    state.reply = newReply();
    draw();
    let response;
    try {
      response = await api.chat({ ...body, model: $("model").value || undefined });
    } catch (error) {
      state.reply = null;
      setError(describe(error));
      // What the server kept (a refused turn may still have made the thread), else as before.
      await load().catch(() => {
        state.messages = previous;
        draw();
      });
      if (fresh && state.thread) {
        history.replaceState(null, "", `#/c/${encodeURIComponent(state.id)}`);
        sidebar.refresh().catch(() => {});
      }
      return false;
    }
    if (fresh) {
      history.replaceState(null, "", `#/c/${encodeURIComponent(state.id)}`);
      sidebar.setCurrent(state.id);
      sidebar.refresh().catch(() => {});
    }
    await follow(response);
    return true;
  }

  async function send() {
    const text = input.value.trim();
    if ((!text && !state.pending.length) || state.reply) return;
    state.id ??= crypto.randomUUID();
    const parts = [...(text ? [{ type: "text", text }] : []), ...state.pending];
    const user = { id: crypto.randomUUID(), role: "user", content: text, parts };
    const earlierMessages = state.messages.filter(shown);
    input.value = "";
    state.pending = [];
    drawAttachments();
    const sent = await turn(
      { id: state.id, messages: [...earlierMessages, user].map(toUi), trigger: "submit-message" },
      [...earlierMessages, user],
    );
    if (!sent && !input.value) input.value = text;
  }

  function regenerate(reply) {
    const at = state.messages.indexOf(reply);
    const upTo = state.messages.slice(0, at).filter(shown);
    return turn(
      { id: state.id, messages: upTo.map(toUi), trigger: "regenerate-message", messageId: reply.id },
      upTo,
    );
  }

  function startEdit(m) {
    const node = list.querySelector(`article[data-id="${CSS.escape(m.id)}"]`);
    const area = h("textarea", { value: textOf(m), "aria-label": "Edit your message", rows: 3 });
    const done = () => draw();
    const submit = () => {
      const text = area.value.trim();
      if (!text) return;
      const at = state.messages.indexOf(m);
      const before = state.messages.slice(0, at).filter(shown);
      const files = (m.parts ?? []).filter((p) => p.type === "file");
      const edited = { ...m, content: text, parts: [{ type: "text", text }, ...files] };
      turn(
        { id: state.id, messages: [...before, edited].map(toUi), trigger: "submit-message", messageId: m.id },
        [...before, edited],
      );
    };
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      } else if (event.key === "Escape") {
        event.stopPropagation();
        done();
      }
    });
    node.querySelector(".body").replaceWith(
      h("div", { class: "edit" }, area, h("div", { class: "message-actions" },
        h("button", { type: "button", onclick: done }, "Cancel"),
        h("button", { type: "button", class: "primary", onclick: submit }, "Save and send"))),
    );
    node.querySelector(".message-actions:not(.edit .message-actions)")?.remove();
    area.focus();
  }

  async function switchTo(m, index) {
    try {
      await api.update(state.id, { activeLeafId: m.siblingIds[index] });
      await load();
    } catch (error) {
      setError(describe(error));
    }
  }

  async function rate(m, rating) {
    try {
      const stored = await api.feedback(state.id, m.id, rating);
      m.feedback = stored?.feedback ?? (rating ? { rating } : undefined);
      if (!rating) delete m.feedback;
      draw();
    } catch (error) {
      setError(describe(error));
    }
  }

  async function stop() {
    if (!state.reply || !state.id) return;
    try {
      await api.stop(state.id);
    } catch (error) {
      setError(describe(error));
    }
  }

  // Thread actions.
  async function change(fields) {
    try {
      state.thread = await api.update(state.id, fields);
      drawHeader();
      await sidebar.refresh();
    } catch (error) {
      setError(describe(error));
    }
  }

  async function share() {
    const link = h("input", { readOnly: true, "aria-label": "Share link" });
    const note = h("p", { class: "hint", role: "status" });
    const create = h("button", { type: "button", class: "primary" });
    const copy = h("button", { type: "button" }, "Copy link");
    const revoke = h("button", { type: "button", class: "danger" }, "Revoke link");
    const show = () => {
      const token = state.thread.share?.token;
      link.value = token ? shareUrl(token) : "";
      link.hidden = copy.hidden = revoke.hidden = !token;
      create.textContent = token ? "Update to the chat as it is now" : "Create link";
      if (!token) note.textContent = "Not shared. A link lets anyone read this chat, signed in or not.";
    };
    const act = (work) => async () => {
      try {
        await work();
        state.thread = (await api.thread(state.id, { limit: 1 })).thread;
        drawHeader();
        show();
      } catch (error) {
        note.textContent = describe(error);
      }
    };
    create.addEventListener("click", act(async () => {
      await api.share(state.id);
      note.textContent = "Anyone with this link can read the chat as it is now.";
    }));
    revoke.addEventListener("click", act(async () => {
      await api.unshare(state.id);
      note.textContent = "The link no longer works.";
    }));
    copy.addEventListener("click", async () => {
      await copyText(link.value);
      note.textContent = "Link copied.";
    });
    show();
    await modal("Share this chat", h("div", { class: "share" }, link, h("div", { class: "actions" }, create, copy, revoke), note), [
      { label: "Done", value: "done", primary: true },
    ]);
  }

  $("rename").addEventListener("click", async () => {
    const title = await ask({ title: "Rename chat", label: "Title", value: state.thread.title });
    if (title?.trim()) await change({ title: title.trim() });
  });
  $("pin").addEventListener("click", () => change({ pinned: !state.thread.pinned }));
  $("archive").addEventListener("click", () => change({ archived: !state.thread.archived }));
  $("edit-tags").addEventListener("click", async () => {
    const text = await ask({ title: "Tags", label: "Tags, separated by commas", value: state.thread.tags.join(", ") });
    if (text === null) return;
    await change({ tags: [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))] });
  });
  $("share").addEventListener("click", share);
  $("export").addEventListener("click", () =>
    downloadExport(`/api/threads/${encodeURIComponent(state.id)}/export?format=markdown`, "chat.md").catch((error) =>
      setError(describe(error)),
    ),
  );
  $("delete").addEventListener("click", async () => {
    const sure = await confirmAction({ title: "Delete chat", message: `Delete “${state.thread.title}” for good?`, confirm: "Delete" });
    if (!sure) return;
    try {
      await api.remove(state.id);
      location.hash = "";
      await sidebar.refresh();
    } catch (error) {
      setError(describe(error));
    }
  });

  // The composer.
  function drawAttachments() {
    $("attachments").replaceChildren(
      ...state.pending.map((f, i) =>
        h("li", {}, f.filename, h("button", { type: "button", class: "icon", "aria-label": `Remove ${f.filename}`, onclick: () => {
          state.pending.splice(i, 1);
          drawAttachments();
        } }, "✕")),
      ),
    );
  }
  $("files").addEventListener("change", async (event) => {
    for (const file of event.target.files) {
      if (file.size > MAX_FILE_BYTES) {
        setError(`${file.name} is larger than ${MAX_FILE_BYTES >> 20} MB.`);
        continue;
      }
      const url = await new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(file);
      });
      state.pending.push({ type: "file", mediaType: file.type || "text/plain", url, filename: file.name, size: file.size });
    }
    event.target.value = "";
    drawAttachments();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("stop").addEventListener("click", stop);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.reply && !document.querySelector("dialog[open]")) stop();
  });
  $("model").addEventListener("change", () => localStorage.setItem(MODEL_KEY, $("model").value));

  return {
    async loadModels() {
      const { data } = await api.models();
      const saved = localStorage.getItem(MODEL_KEY);
      const chosen = data.find((m) => m.id === saved) ?? data.find((m) => m.default) ?? data[0];
      $("model").replaceChildren(...data.map((m) => h("option", { value: m.id, selected: m === chosen }, m.default ? `${m.id} (default)` : m.id)));
    },
    // Opens a thread (null: a new chat), resuming a reply that is still being written.
    async open(id) {
      if (state.reply && id === state.id) return;
      setError(null);
      Object.assign(state, { id, thread: null, messages: [], before: null, reply: null });
      sidebar.setCurrent(id);
      drawHeader();
      draw();
      if (id) {
        try {
          const thread = await load();
          if (thread.status === "streaming") {
            const response = await api.resume(id);
            if (response) await follow(response);
          }
        } catch (error) {
          setError(error.status === 404 ? "This chat does not exist (any more)." : describe(error));
        }
      }
      // The composer stays disabled until the first chat is open: a message sent earlier would be
      // wiped from the page by this very call.
      input.disabled = $("send").disabled = false;
      input.focus();
    },
  };
}
