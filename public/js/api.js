// The API client: every request of the app goes through `request`, which adds the bearer
// token when the person gave one (kept in sessionStorage, so it dies with the tab) and
// otherwise relies on the Auth.js session cookie of the same site. Errors become `ApiError`s
// with a sentence a person can act on (`describe`).

const TOKEN_KEY = "buddahbot.token";

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function errorOf(response) {
  let code = "http_error";
  let message = `The server answered ${response.status}.`;
  try {
    const body = await response.json();
    code = body.error?.code ?? body.error?.type ?? code;
    message = body.error?.message ?? message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, code, message, response.headers.get("retry-after"));
}

export function describe(error) {
  if (!(error instanceof ApiError)) return `Cannot reach the server (${error.message}).`;
  switch (error.status) {
    case 401:
      return "You are signed out. Sign in again.";
    case 429:
      return error.retryAfter
        ? `Too many requests. Try again in ${error.retryAfter} s.`
        : "Too many requests. Try again in a moment.";
    case 503:
      return `The service is unavailable right now (${error.message}) Try again in a moment.`;
    case 409:
      if (error.code === "generation_in_progress") {
        return "A reply is still being written in this chat. Wait for it, or stop it.";
      }
      return error.message;
    default:
      return error.message;
  }
}

export async function request(method, path, { body, raw = false, headers = {}, cache } = {}) {
  const sent = { ...headers };
  if (auth.token) sent.authorization = `Bearer ${auth.token}`;
  if (body !== undefined) sent["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache,
  });
  if (!response.ok) throw await errorOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

const q = (params) => {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `?${text}` : "";
};
const enc = encodeURIComponent;

export const api = {
  threads: (params) => request("GET", `/api/threads${q(params)}`),
  thread: (id, params = {}) => request("GET", `/api/threads/${enc(id)}${q(params)}`),
  update: (id, fields) => request("PATCH", `/api/threads/${enc(id)}`, { body: fields }),
  remove: (id) => request("DELETE", `/api/threads/${enc(id)}`),
  removeAll: () => request("DELETE", "/api/threads"),
  search: (text, archived) => request("GET", `/api/search${q({ q: text, limit: 20, archived })}`),
  models: () => request("GET", "/api/models"),
  share: (id) => request("POST", `/api/threads/${enc(id)}/share`, { body: {} }),
  unshare: (id) => request("DELETE", `/api/threads/${enc(id)}/share`),
  // Revalidated: a link revoked a moment ago must not show from the browser's cache.
  shared: (token) => request("GET", `/api/shared/${enc(token)}`, { cache: "no-cache" }),
  copyShared: (token) => request("POST", `/api/shared/${enc(token)}/copy`),
  feedback: (id, message, rating) =>
    rating
      ? request("PUT", `/api/threads/${enc(id)}/messages/${enc(message)}/feedback`, { body: { rating } })
      : request("DELETE", `/api/threads/${enc(id)}/messages/${enc(message)}/feedback`),
  stop: (id) => request("POST", `/api/chat/${enc(id)}/stop`),
  chat: (body) => request("POST", "/api/chat", { body, raw: true }),
  // The generation in progress, from its first event; null when none is running (204).
  resume: async (id) => {
    const response = await request("GET", `/api/chat/${enc(id)}/stream`, { raw: true });
    return response.status === 204 ? null : response;
  },
  download: (path) => request("GET", path, { raw: true }),
  devSignIn: () => fetch("/dev/session").then((r) => r.ok, () => false),
  devSession: (userId) =>
    fetch("/dev/session", {
      method: userId ? "POST" : "DELETE",
      headers: { "content-type": "application/json" },
      body: userId ? JSON.stringify({ userId }) : undefined,
    }).then(async (r) => {
      if (!r.ok) throw await errorOf(r);
    }),
};
