/* A job's entities at a glance: the top canonical entities per type (bar charts), the strongest
   co-occurring pairs (a graph), and the documents mentioning the entity picked (docs/corpus-view.md). */
import { api, items } from "../api.js";
import { esc, labelClass, num, orderLabels, stamp } from "../format.js";
import { app, routeToken } from "../page.js";
import { highlight, notFound, toast } from "../ui.js";
import { labelColor, loadECharts } from "../vendor.js";

const TOP = 12;      // bars per type
const PAIRS = 60;    // edges of the graph

export async function viewCorpus(id) {
  const token = routeToken;
  const base = `/jobs/${encodeURIComponent(id)}`;
  app.innerHTML = `<div class="empty">Grouping the job's entities…</div>`;
  let first, echarts;
  try {
    [first, echarts] = await Promise.all([api(`${base}/groups?limit=1000`), loadECharts()]);
  } catch (e) {
    if (e.status === 409) { app.innerHTML = `<div class="callout warn" data-testid="corpus-not-ready">${esc(e.message)}</div>`; return; }
    return notFound(e);
  }
  if (token !== routeToken) return;
  const groups = items(first);
  const labels = orderLabels(new Set(groups.map((g) => g.label)));
  const charts = [];
  const state = { by: "documents", picked: null, cursor: null, docs: [] };
  app.innerHTML = `
    <div class="crumbs"><a href="#/">Jobs</a> / <a href="#/jobs/${esc(id)}">#${esc(id)}</a> / entities at a glance</div>
    <div class="page-head">
      <div><h1>Entities at a glance</h1>
        <div class="sub" data-testid="corpus-meta">${first.complete
          ? `all ${num(first.documents)} done documents · spellings folded, dictionary aliases merged`
          : `the job is still running: grouped over ${num(first.documents)} done documents at ${esc(stamp(first.grouped_at))}`}</div></div>
      <form class="form-row" id="corpus-find">
        <input type="search" name="name" placeholder="a name in any spelling, e.g. 北京 or 臺北" data-testid="corpus-name">
        <button class="btn" type="submit" data-testid="corpus-find">Find documents</button>
      </form>
    </div>
    ${echarts ? "" : `<div class="callout warn" data-testid="no-charts">The charting library is not installed (run scripts/bootstrap.sh with npm on the path): lists instead of charts.</div>`}
    ${groups.length ? "" : `<div class="empty" data-testid="corpus-empty">No entities in this job.</div>`}
    <div class="grid grid-3" style="margin-bottom:20px" id="corpus-types">
      ${labels.map((l) => `<div class="card"><div class="card-head"><h2><span class="chip chip-${labelClass(l)}">${esc(l)}</span> most documents</h2></div>
        <div class="corpus-chart" data-testid="top-chart" data-label="${esc(l)}"></div></div>`).join("")}
    </div>
    <div class="grid grid-3-1" style="margin-bottom:20px">
      <div class="card"><div class="card-head"><h2>Mentioned together</h2>
        <div class="segmented" id="pair-by" data-testid="pair-by" style="margin-left:auto">
          <button type="button" data-by="documents" class="on">documents</button><button type="button" data-by="jaccard">Jaccard</button></div></div>
        <div class="corpus-graph" id="pair-graph" data-testid="pair-graph"></div></div>
      <div class="card flush"><div class="card-head"><h2 id="mentions-title">Documents</h2></div>
        <div id="mentions" data-testid="mentions"><div class="muted small" style="padding:12px">Pick an entity: a bar, a node or a name above.</div></div></div>
    </div>`;

  const pick = (name, label) => { state.picked = { name, label }; state.cursor = null; state.docs = []; loadMentions(); };
  for (const el of app.querySelectorAll("[data-testid=top-chart]")) {
    const label = el.dataset.label;
    const top = groups.filter((g) => g.label === label).slice(0, TOP);
    if (!echarts) { el.innerHTML = listHtml(top); el.querySelectorAll("[data-name]").forEach((b) => b.addEventListener("click", () => pick(b.dataset.name, label))); continue; }
    el.style.height = `${Math.max(140, 26 * top.length + 30)}px`;
    const chart = echarts.init(el);
    chart.setOption({
      grid: { left: 8, right: 40, top: 4, bottom: 4, containLabel: true },
      tooltip: { trigger: "item", formatter: (p) => `${esc(p.name)}<br>${num(p.value)} documents · ${num(top[p.dataIndex].mentions)} mentions${top[p.dataIndex].forms.length > 1 ? `<br>${top[p.dataIndex].forms.map((f) => esc(f.text)).join(" · ")}` : ""}` },
      xAxis: { type: "value", show: false },
      yAxis: { type: "category", inverse: true, data: top.map((g) => g.name), axisTick: { show: false } },
      series: [{ type: "bar", data: top.map((g) => g.documents), itemStyle: { color: labelColor(label), borderRadius: [0, 3, 3, 0] },
                 label: { show: true, position: "right", formatter: (p) => num(p.value) } }],
    });
    chart.on("click", (p) => pick(p.name, label));
    charts.push(chart);
  }

  let graph = null;
  async function loadPairs() {
    const page = await api(`${base}/cooccur?limit=${PAIRS}&by=${state.by}`);
    if (token !== routeToken) return;
    const pairs = items(page);
    const el = document.getElementById("pair-graph");
    if (!pairs.length) { el.innerHTML = `<div class="muted small" data-testid="no-pairs">No two entities share ${2} documents yet.</div>`; return; }
    if (!echarts) { el.innerHTML = pairsHtml(pairs); return; }
    const nodes = new Map();
    for (const p of pairs) for (const e of [p.a, p.b]) nodes.set(e.rank, e);
    const most = Math.max(...[...nodes.values()].map((n) => n.documents));
    const heaviest = Math.max(...pairs.map((p) => p[state.by]));
    el.style.height = "460px";
    graph = graph || echarts.init(el);
    graph.setOption({
      tooltip: { formatter: (p) => p.dataType === "edge"
        ? `${esc(p.data.a)} – ${esc(p.data.b)}<br>${num(p.data.documents)} documents together · Jaccard ${p.data.jaccard.toFixed(3)}`
        : `${esc(p.data.name)} (${esc(p.data.label)})<br>${num(p.data.documents)} documents` },
      legend: { data: orderLabels(new Set([...nodes.values()].map((n) => n.label))), bottom: 0 },
      series: [{
        type: "graph", layout: "force", roam: true, draggable: true, top: 20, bottom: 48, zoom: 0.85,
        force: { repulsion: 160, edgeLength: [40, 140], gravity: 0.08 },
        categories: orderLabels(new Set([...nodes.values()].map((n) => n.label))).map((l) => ({ name: l, itemStyle: { color: labelColor(l) } })),
        label: { show: true, position: "right", fontSize: 11 },
        emphasis: { focus: "adjacency" },
        data: [...nodes.values()].map((n) => ({ id: String(n.rank), name: n.name, label: n.label, documents: n.documents,
          category: n.label, symbolSize: 8 + 22 * Math.sqrt(n.documents / most) })),
        links: pairs.map((p) => ({ source: String(p.a.rank), target: String(p.b.rank), a: p.a.name, b: p.b.name,
          documents: p.documents, jaccard: p.jaccard, lineStyle: { width: 0.5 + 4 * (p[state.by] / heaviest), opacity: 0.55 } })),
      }],
    }, true);
    graph.off("click");
    graph.on("click", (p) => { if (p.dataType === "node") pick(p.data.name, p.data.label); });
    charts.push(graph);
  }

  async function loadMentions() {
    const { name, label } = state.picked;
    const q = new URLSearchParams({ name, limit: "20" });
    if (label) q.set("type", label);
    if (state.cursor) q.set("cursor", state.cursor);
    let page;
    try { page = await api(`${base}/mentions?${q}`); } catch (e) {
      document.getElementById("mentions").innerHTML = `<div class="empty" data-testid="mentions-none">${esc(e.message)}</div>`;
      document.getElementById("mentions-title").textContent = "Documents";
      return;
    }
    if (token !== routeToken) return;
    const g = page.group;
    state.docs.push(...items(page));
    state.cursor = page.next_cursor;
    document.getElementById("mentions-title").innerHTML = `<span class="chip chip-${labelClass(g.label)}">${esc(g.label)}</span> ${esc(g.name)} · ${num(g.documents)} documents`;
    const el = document.getElementById("mentions");
    el.innerHTML = `${g.forms.length > 1 ? `<div class="small muted" style="padding:8px 12px" data-testid="mention-forms">spellings: ${g.forms.map((f) => `${esc(f.text)} (${num(f.mentions)})`).join(" · ")}</div>` : ""}
      <ul class="mention-list">${state.docs.map((d) => `<li data-testid="mention-doc" data-doc="${esc(d.doc_id)}">
        <a href="#/jobs/${esc(id)}/docs/${encodeURIComponent(d.doc_id)}">${esc(d.doc_id)}</a> <span class="muted small">${d.mentions.length}×</span>
        <div class="snippet">${d.snippet_start > 0 ? "…" : ""}${highlight(d.snippet, d.mentions.map((m) => ({ ...m, label: g.label, start: m.start - d.snippet_start, end: m.end - d.snippet_start })).filter((m) => m.start >= 0 && m.end <= Array.from(d.snippet).length))}…</div></li>`).join("")}</ul>
      ${state.cursor ? `<div class="table-foot"><button class="btn btn-sm" id="mentions-more" data-testid="mentions-more">More documents</button></div>` : ""}`;
    const more = document.getElementById("mentions-more");
    if (more) more.addEventListener("click", () => loadMentions().catch((e) => toast(e.message, true)));
  }

  document.getElementById("pair-by").addEventListener("click", (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    state.by = b.dataset.by;
    document.querySelectorAll("#pair-by button").forEach((x) => x.classList.toggle("on", x === b));
    loadPairs().catch((e) => toast(e.message, true));
  });
  document.getElementById("corpus-find").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = ev.currentTarget.elements.name.value.trim();
    if (name) pick(name, null);
  });
  const resize = () => { if (token !== routeToken) { window.removeEventListener("resize", resize); return; } charts.forEach((c) => c.resize()); };
  window.addEventListener("resize", resize);
  loadPairs().catch((e) => toast(e.message, true));
}

function listHtml(top) {
  if (!top.length) return `<div class="muted small">None.</div>`;
  const max = Math.max(...top.map((g) => g.documents));
  return `<ul class="top-list">${top.map((g) => `<li><button type="button" class="linkish ent-text" data-name="${esc(g.name)}">${esc(g.name)}</button>
    <span class="cnt">${num(g.documents)}</span><span class="bar"><span class="bar-${labelClass(g.label)}" style="width:${(100 * g.documents) / max}%"></span></span></li>`).join("")}</ul>`;
}

function pairsHtml(pairs) {
  return `<table><thead><tr><th>Entity</th><th>Entity</th><th class="num">Documents</th><th class="num">Jaccard</th></tr></thead><tbody>
    ${pairs.map((p) => `<tr><td>${esc(p.a.name)} <span class="chip chip-${labelClass(p.a.label)}">${esc(p.a.label)}</span></td>
      <td>${esc(p.b.name)} <span class="chip chip-${labelClass(p.b.label)}">${esc(p.b.label)}</span></td>
      <td class="num">${num(p.documents)}</td><td class="num">${p.jaccard.toFixed(3)}</td></tr>`).join("")}</tbody></table>`;
}
