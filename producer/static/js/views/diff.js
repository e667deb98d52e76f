/* Two jobs over the same documents compared: counts per type, then the differing entities. */
import { api } from "../api.js";
import { esc, labelClass, num } from "../format.js";
import { app, routeToken } from "../page.js";
import { notFound } from "../ui.js";

export async function viewDiff(a, b) {
  const token = routeToken;
  app.innerHTML = `<div class="empty">Comparing…</div>`;
  let d;
  try { d = await api(`/jobs/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}?limit=200`); } catch (e) { return notFound(e); }
  if (token !== routeToken) return;
  const row = (label, c) => `<tr><td>${label === "all" ? "<strong>all</strong>" : `<span class="chip chip-${labelClass(label)}">${esc(label)}</span>`}</td><td class="num">${num(c.only_a)}</td><td class="num">${num(c.only_b)}</td><td class="num">${num(c.changed)}</td></tr>`;
  const list = (title, rows, test) => `<div class="card flush" style="margin-bottom:20px" data-testid="${test}"><div class="card-head"><h2>${title}</h2><span class="hint">${num(rows.length)} shown</span></div>
    ${rows.length ? `<table><thead><tr><th>Document</th><th>Entity</th><th>Type</th><th class="num">Offsets</th></tr></thead><tbody>${rows.map((e) => `<tr>
      <td><a href="#/jobs/${esc(a)}/docs/${encodeURIComponent(e.doc_id)}">${esc(e.doc_id)}</a></td><td class="ent-text">${esc(e.text)}</td>
      <td><span class="chip chip-${labelClass(e.label)}">${esc(e.label)}</span>${e.label_b ? ` → <span class="chip chip-${labelClass(e.label_b)}">${esc(e.label_b)}</span>` : ""}</td>
      <td class="num mono">${e.start}–${e.end}</td></tr>`).join("")}</tbody></table>` : `<div class="empty small">None.</div>`}</div>`;
  app.innerHTML = `<div class="crumbs"><a href="#/">Jobs</a> / <a href="#/jobs/${esc(a)}">#${esc(a)}</a> / diff</div>
    <div class="page-head"><div><h1>Diff</h1><div class="sub">A <a href="#/jobs/${esc(a)}">#${esc(a)}</a> (${esc(d.model_a || "?")}) · B <a href="#/jobs/${esc(b)}">#${esc(b)}</a> (${esc(d.model_b || "?")}) · ${num(d.documents)} documents</div></div></div>
    <div class="card" style="margin-bottom:20px" data-testid="diff-counts"><table><thead><tr><th>Type</th><th class="num">Only in A</th><th class="num">Only in B</th><th class="num">Changed type</th></tr></thead>
      <tbody>${Object.entries(d.by_label).map(([l, c]) => row(l, c)).join("")}${row("all", d.counts)}</tbody></table>
      ${d.complete ? "" : `<p class="callout warn" data-testid="diff-incomplete">A job is still running: its untagged documents count as having no entities.</p>`}
      ${d.truncated ? `<p class="muted small">Lists cut at 200 each; every difference is counted. <code>GET /jobs/${esc(a)}/diff/${esc(b)}?limit=…</code> for more.</p>` : ""}</div>
    ${list("Only in A", d.only_a, "diff-only-a")}${list("Only in B", d.only_b, "diff-only-b")}${list("Changed type", d.changed, "diff-changed")}`;
}
