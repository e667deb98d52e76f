/* The page's one view slot, its route token and its poll timer. */

export const app = document.getElementById("app");
export const POLL_MS = 1500;

// Bumped whenever the view changes: async work started for an older view checks it and stops.
export let routeToken = 0;
let pollTimer = null;

/** Start a new view: invalidates the previous one's pending work and stops its polling. */
export function newView() {
  routeToken++;
  clearInterval(pollTimer);
  return routeToken;
}

export function stopPolling() { clearInterval(pollTimer); }

export function poll(fn) {
  clearInterval(pollTimer);
  const token = routeToken;
  const tick = async () => {
    if (token !== routeToken || document.hidden) return;
    try { await fn(); } catch (e) { /* a failed refresh is retried on the next tick */ }
  };
  pollTimer = setInterval(tick, POLL_MS);
}
