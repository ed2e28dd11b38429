// The chat list: pinned chats on top, then the rest newest first, a page at a time as the
// list scrolls (the API's cursor); the archived view; and search with highlighted hits.
import { api, describe } from "./api.js";
import { h, highlighted } from "./dom.js";

const PAGE = 30;
const $ = (id) => document.getElementById(id);

export function createSidebar({ onError }) {
  const list = $("threads");
  const results = $("results");
  const search = $("search");
  let view = "false"; // the API's `archived` filter: "false" or "true"
  let cursor = null;
  let loading = null;
  let generation = 0;
  let current = null;

  const item = (thread) =>
    h(
      "li",
      { class: thread.id === current ? "current" : "" },
      h(
        "a",
        { href: `#/c/${encodeURIComponent(thread.id)}`, "aria-current": thread.id === current ? "page" : null, "data-id": thread.id },
        thread.pinned ? h("span", { class: "pin", title: "Pinned", "aria-label": "Pinned" }, "★") : null,
        h("span", { class: "name" }, thread.title || "Untitled"),
        thread.tags?.length ? h("span", { class: "tag-list" }, thread.tags.map((t) => h("span", { class: "tag" }, t))) : null,
      ),
    );

  async function more(mine) {
    if (cursor === undefined || mine !== generation) return;
    const page = await api.threads({ limit: PAGE, cursor, archived: view });
    if (mine !== generation) return;
    const shown = new Set([...list.querySelectorAll("a")].map((a) => a.dataset.id));
    list.append(...page.threads.filter((t) => !shown.has(t.id)).map(item));
    cursor = page.nextCursor ?? undefined;
  }

  function loadMore() {
    if (!loading) {
      const mine = generation;
      loading = more(mine)
        .catch((error) => onError(describe(error)))
        .finally(() => {
          loading = null;
        });
    }
    return loading;
  }

  async function refresh() {
    const mine = ++generation;
    cursor = null;
    loading = null;
    // Pinned chats first (the active view only), then every page of the rest.
    const pinned = view === "false" ? await api.threads({ pinned: true, limit: 100 }) : { threads: [] };
    if (mine !== generation) return;
    list.replaceChildren(...pinned.threads.map(item));
    await loadMore();
  }

  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && cursor !== undefined && list.childElementCount > 0) loadMore();
  }).observe($("threads-end"));

  function setView(archived) {
    view = archived ? "true" : "false";
    $("view-active").setAttribute("aria-pressed", String(!archived));
    $("view-archived").setAttribute("aria-pressed", String(archived));
    refresh().catch((error) => onError(describe(error)));
  }
  $("view-active").addEventListener("click", () => setView(false));
  $("view-archived").addEventListener("click", () => setView(true));

  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(runSearch, 250);
  });
  async function runSearch() {
    const text = search.value.trim();
    results.hidden = !text;
    list.hidden = Boolean(text);
    if (!text) return;
    try {
      const found = await api.search(text, "all");
      if (search.value.trim() !== text) return;
      results.replaceChildren(
        ...found.results.map((r) =>
          h(
            "li",
            {},
            h(
              "a",
              { href: `#/c/${encodeURIComponent(r.threadId)}` },
              h("span", { class: "name" }, r.threadTitle || "Untitled"),
              h("span", { class: "snippet" }, highlighted(r.snippet, r.highlights)),
            ),
          ),
        ),
      );
      if (found.results.length === 0) results.append(h("li", { class: "hint" }, "Nothing found."));
    } catch (error) {
      onError(describe(error));
    }
  }

  return {
    refresh,
    setCurrent(id) {
      current = id;
      for (const a of list.querySelectorAll("a")) {
        const here = a.dataset.id === id;
        a.parentElement.classList.toggle("current", here);
        if (here) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
    },
  };
}
