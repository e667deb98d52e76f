/* shiti dashboard: a tiny hash-routed single page over the REST API. ES modules, no build step,
   no libraries. Entry point: the key prompt, identity, sign-out and start-up. */
import { api, forgetApiKey, onUnauthorized, setApiKey } from "./api.js";
import { forgetModels, loadStates, modelLabels } from "./meta.js";
import { app, newView } from "./page.js";
import { route } from "./router.js";
import { footerLegend, toast } from "./ui.js";
import { downloadExport } from "./views/job.js";

// ── key prompt, identity, sign-out ─────────────────────────────────────────
function showKeyPrompt(message) {
  newView();
  document.getElementById("whoami").textContent = "";
  document.getElementById("sign-out").hidden = true;
  app.innerHTML = `
    <form class="card key-prompt" id="key-form" data-testid="key-form">
      <h2>Sign in with an API key</h2>
      <p class="muted" id="key-message"></p>
      <label class="field">API key <input type="password" name="key" autocomplete="off" required data-testid="key-input"></label>
      <p class="muted">Kept in this tab only (sessionStorage). An operator creates keys with <code>shiti keys create</code>.</p>
      <div class="actions"><button class="btn btn-primary" type="submit" data-testid="key-submit">Sign in</button></div>
    </form>`;
  document.getElementById("key-message").textContent = message;  // text, never markup
  document.getElementById("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setApiKey(ev.target.elements.key.value.trim());
    boot();
  });
}

function signOut() {
  forgetApiKey();
  showKeyPrompt("Signed out.");
}

async function boot() {
  forgetModels();  // another key may see other models
  let who;
  try {
    who = await api("/whoami");
    await loadStates();
  } catch (e) {
    if (e.status !== 401) toast(`Could not reach the API: ${e.message}`, true);
    return;
  }
  const badge = document.getElementById("whoami");
  badge.textContent = who.open ? "open (no keys)" : `${who.name} · ${who.scope}`;
  document.getElementById("sign-out").hidden = who.open;
  route();
  modelLabels().then(footerLegend);
}

onUnauthorized(showKeyPrompt);
document.addEventListener("click", (ev) => {
  if (ev.target.closest("#sign-out")) signOut();
  const exp = ev.target.closest("#btn-export");
  if (exp) downloadExport(location.hash.split("/")[2]);
});
window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => { /* polls skip while hidden and resume on the next tick */ });
boot();
