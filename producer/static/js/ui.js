/* Shared page fragments: toast, state badge, progress bar, highlighted text, label legend. */
import { app } from "./page.js";
import { esc, num, labelOf, labelClass, labelName, orderLabels } from "./format.js";

let toastTimer;
export function toast(msg, isError = false) {
  const el = document.getElementById("toast");
  el.textContent = msg;
  el.className = "toast" + (isError ? " error" : "");
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

export function badge(state) {
  const s = state || "unknown";
  return `<span class="badge ${esc(s)}" data-testid="job-state">${esc(s.replace("_", " "))}</span>`;
}

export function progressBar(j, large = false) {
  const total = Math.max(j.total || 0, 1);
  const pct = (n) => `${(100 * (n || 0)) / total}%`;
  const finished = (j.done || 0) + (j.failed || 0) + (j.cancelled || 0);
  const shown = j.total ? Math.floor((100 * finished) / j.total) : 0;
  return `
    <div class="progress ${large ? "lg" : ""}" role="progressbar" aria-valuemin="0" aria-valuemax="100"
         aria-valuenow="${shown}" data-testid="progress">
      <span class="p-done" style="width:${pct(j.done)}"></span>
      <span class="p-fail" style="width:${pct(j.failed)}"></span>
      <span class="p-cancel" style="width:${pct(j.cancelled)}"></span>
      <span class="p-proc" style="width:${pct(j.processing)}"></span>
    </div>
    <div class="progress-meta"><span>${num(finished)} / ${num(j.total)} documents</span><span>${shown}%</span></div>`;
}

export function highlight(text, entities) {
  // Offsets are Unicode code points; JS strings are UTF-16, so index by code point.
  const cps = Array.from(text || "");
  const sorted = [...(entities || [])].sort((a, b) => a.start - b.start || b.end - a.end);
  let out = "", pos = 0;
  for (const e of sorted) {
    if (e.start < pos) continue; // overlapping spans are not expected; never render twice
    out += esc(cps.slice(pos, e.start).join(""));
    const l = labelOf(e);
    const title = `${l}${e.score != null ? ` · ${(e.score * 100).toFixed(0)}%` : ""} · [${e.start}, ${e.end})`;
    out += `<mark class="ent ent-${labelClass(l)}" data-label="${esc(l)}" data-start="${e.start}" data-end="${e.end}" title="${esc(title)}">${esc(cps.slice(e.start, e.end).join(""))}</mark>`;
    pos = e.end;
  }
  return out + esc(cps.slice(pos).join(""));
}

/** A chip per label: `labels` (the models', meta.modelLabels) then any others in `entities`. */
export function legend(entities, labels, { interactive = false, showCounts = true } = {}) {
  const counts = {};
  for (const e of entities || []) counts[labelOf(e)] = (counts[labelOf(e)] || 0) + 1;
  const all = [...new Set([...labels, ...orderLabels(Object.keys(counts))])];
  return `<div class="legend" data-testid="legend">${all.map((l) => {
    const tag = interactive ? "button" : "span";
    const name = labelName(l);
    return `<${tag} class="chip chip-${labelClass(l)}" data-label="${esc(l)}"><b>${esc(l)}</b>${name !== l ? ` ${esc(name)}` : ""}${showCounts ? ` <span class="n">${counts[l] || 0}</span>` : ""}</${tag}>`;
  }).join("")}</div>`;
}

/** The footer's chips, once the models' labels are known (index.html holds PER/LOC/ORG until then). */
export function footerLegend(labels) {
  const el = document.querySelector(".footer .legend-inline");
  if (!el || !labels.length) return;
  el.innerHTML = labels.map((l) => {
    const name = labelName(l);
    return `<span class="chip chip-${labelClass(l)}">${esc(l)}${name !== l ? ` ${esc(name)}` : ""}</span>`;
  }).join("\n      ");
}

export function modelOptions(models) {
  return models.filter((m) => m.ok).map((m) => `<option value="${esc(m.name)}">${esc(m.name)} · ${m.workers} worker${m.workers === 1 ? "" : "s"}</option>`).join("");
}

export function notFound(e) {
  app.innerHTML = `<div class="card empty"><div class="big">🔍</div><h2>${e.status === 404 ? "Not found" : "Something went wrong"}</h2>
    <p class="muted">${esc(e.message)}</p><a class="btn" href="#/">Back to jobs</a></div>`;
}
