/* One document: its text with the entities highlighted, a legend that toggles types, the list. */
import { api } from "../api.js";
import { esc, labelClass, labelOf, num } from "../format.js";
import { modelLabels } from "../meta.js";
import { app, routeToken } from "../page.js";
import { badge, highlight, legend, notFound } from "../ui.js";

export async function viewDoc(id, docId) {
  const token = routeToken;
  app.innerHTML = `<div class="empty">Loading document…</div>`;
  // The legend lists the labels of the job's model: the job says which model that is.
  const model = api(`/jobs/${encodeURIComponent(id)}`).then((j) => j.model, () => null);
  let d;
  try { d = await api(`/jobs/${encodeURIComponent(id)}/documents/${encodeURIComponent(docId)}`); } catch (e) { return notFound(e); }
  const labels = await modelLabels(await model);
  if (token !== routeToken) return;
  const ents = d.entities || [];
  const nChars = Array.from(d.text || "").length;
  app.innerHTML = `
    <div class="crumbs"><a href="#/">Jobs</a> / <a href="#/jobs/${esc(id)}">#${esc(id)}</a> / ${esc(docId)}</div>
    <div class="page-head"><div><h1>Document <span class="mono" style="font-size:22px">${esc(d.doc_id)}</span></h1>
      <div class="sub">${badge(d.state)} &nbsp; ${num(nChars)} characters · ${num(ents.length)} entities${d.reason ? ` · reason <b>${esc(d.reason)}</b>` : ""}</div></div>
      <div class="actions"><a class="btn" href="#/jobs/${esc(id)}">← Back to job</a></div></div>
    <div class="grid grid-3-1">
      <div class="card">
        <div class="card-head"><h2>Text</h2>${legend(ents, labels, { interactive: true })}</div>
        <div class="doc-text" id="doc-text" data-testid="doc-text">${highlight(d.text, ents)}</div>
      </div>
      <div class="card flush"><div class="card-head"><h2>Entities</h2></div>
        <div style="margin-top:12px;max-height:70vh;overflow:auto">${ents.length ? `<table><thead><tr><th>Entity</th><th>Type</th><th class="num">Offsets</th></tr></thead><tbody>
          ${ents.map((e, i) => `<tr class="clickable" data-i="${i}"><td class="ent-text">${esc(e.text)}</td><td><span class="chip chip-${labelClass(labelOf(e))}">${esc(labelOf(e))}</span></td><td class="num mono">${e.start}–${e.end}</td></tr>`).join("")}
          </tbody></table>` : `<div class="empty small">No entities in this document.</div>`}</div></div>
    </div>`;
  // Legend toggles hide a type; clicking a row focuses its mark in the text.
  const hidden = new Set();
  document.querySelectorAll(".legend button.chip").forEach((b) => b.addEventListener("click", () => {
    const l = b.dataset.label;
    hidden.has(l) ? hidden.delete(l) : hidden.add(l);
    b.classList.toggle("off", hidden.has(l));
    document.querySelectorAll(`#doc-text mark[data-label="${CSS.escape(l)}"]`).forEach((m) => { m.style.visibility = ""; m.classList.toggle("ent-hidden", hidden.has(l)); m.style.background = hidden.has(l) ? "transparent" : ""; m.style.borderColor = hidden.has(l) ? "transparent" : ""; });
  }));
  const marks = document.querySelectorAll("#doc-text mark");
  document.querySelectorAll("tr[data-i]").forEach((tr) => tr.addEventListener("click", () => {
    const e = ents[Number(tr.dataset.i)];
    const text = document.getElementById("doc-text");
    marks.forEach((m) => m.classList.toggle("focus", Number(m.dataset.start) === e.start));
    text.classList.add("dim");
    const m = [...marks].find((x) => Number(x.dataset.start) === e.start);
    if (m) m.scrollIntoView({ block: "center", behavior: "smooth" });
    setTimeout(() => text.classList.remove("dim"), 1800);
  }));
}
