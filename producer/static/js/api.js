/* The REST client: every request carries the API key kept for this tab. */

// ── API key (kept for this tab only; every request sends it) ───────────────
const KEY_STORE = "shiti.apiKey";
export const apiKey = () => sessionStorage.getItem(KEY_STORE);
export const setApiKey = (key) => sessionStorage.setItem(KEY_STORE, key);
export const forgetApiKey = () => sessionStorage.removeItem(KEY_STORE);
export function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// What a 401 does (main.js shows the key prompt); set once at start-up.
let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

export async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: authHeaders({ Accept: "application/json", ...(opts.headers || {}) }) });
  if (res.status === 401) {
    // No key, or it was revoked: ask again (and stop whatever view was loading).
    forgetApiKey();
    unauthorized("This service needs an API key.");
    const err = new Error("an API key is needed");
    err.status = 401;
    throw err;
  }
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const err = new Error((body && body.error && body.error.message) || res.statusText);
    err.status = res.status;
    err.code = body && body.error && body.error.code;
    throw err;
  }
  return body;
}
export const items = (r) => (Array.isArray(r) ? r : r.items || []);
