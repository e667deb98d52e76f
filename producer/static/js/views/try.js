/* "Try a sentence": one text through POST /extract, as a card (also on the jobs page) and a page. */
import { api } from "../api.js";
import { esc } from "../format.js";
import { modelLabels } from "../meta.js";
import { app, routeToken } from "../page.js";
import { highlight, legend } from "../ui.js";

const SAMPLE = "张伟在北京大学读书，毕业后加入了阿里巴巴，常驻杭州。";

export function tryCard(compactCard = false) {
  return `<form class="card" id="try-form" data-testid="try-form">
    <div class="card-head"><h2>Try a sentence</h2><span class="hint">试一试：输入一句中文</span></div>
    <textarea name="text" rows="${compactCard ? 4 : 6}" data-testid="try-text">${esc(SAMPLE)}</textarea>
    <div class="actions" style="margin-top:12px"><button class="btn btn-primary" type="submit" data-testid="try-submit">Extract entities</button></div>
    <div id="try-result"></div>
  </form>`;
}

export function bindTry() {
  const form = document.getElementById("try-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = form.elements.text.value;
    const btn = form.querySelector("button[type=submit]");
    const out = document.getElementById("try-result");
    btn.disabled = true; btn.innerHTML = `<span class="spinner"></span> Extracting…`;
    try {
      const r = await api("/extract", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
      const labels = await modelLabels();
      out.innerHTML = `<div class="try-result" data-testid="try-output">
        <div class="doc-text">${highlight(r.text ?? text, r.entities)}</div>
        <div style="margin-top:12px">${legend(r.entities, labels)}</div></div>`;
    } catch (e) {
      out.innerHTML = `<div class="try-result" style="color:var(--bad)">${esc(e.status === 504 ? "The workers did not answer in time — are any running?" : e.message)}</div>`;
    } finally { btn.disabled = false; btn.textContent = "Extract entities"; }
  });
}

export async function viewTry() {
  const token = routeToken;
  const labels = await modelLabels();
  if (token !== routeToken) return;
  app.innerHTML = `<div class="page-head"><div><h1>Try a sentence</h1>
    <div class="sub">The text is submitted as a one-document job and answered as soon as a worker has tagged it.</div></div></div>
    <div class="grid grid-3-1">${tryCard(false)}
      <div class="card"><h2 style="margin-bottom:10px">Entity types</h2>${legend([], labels, { showCounts: false })}
        <p class="muted small" style="margin-top:14px">PER 人名 — people · LOC 地名 — places · ORG 机构 — organisations.
        Offsets are end-exclusive Unicode code points into the stored text.</p></div></div>`;
  bindTry();
}
