/* shiti dashboard: a tiny hash-routed single page over the REST API. No build step, no libraries. */
"use strict";

const LABEL_NAMES = { PER: "人名", LOC: "地名", ORG: "机构" };
// The job states come from the API (GET /states, the server's one state machine) at boot.
let STATES = [];
let TERMINAL = new Set();
const POLL_MS = 1500;
const SAMPLE = "张伟在北京大学读书，毕业后加入了阿里巴巴，常驻杭州。";

const app = document.getElementById("app");
let pollTimer = null;
let routeToken = 0;

// ── helpers ────────────────────────────────────────────────────────────────
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const nf = new Intl.NumberFormat("en-US");
const num = (n) => (n == null || Number.isNaN(n) ? "—" : nf.format(n));
function compact(n) {
  if (n == null || Number.isNaN(n)) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return nf.format(Math.round(n));
}
function rate(n) {
  if (n == null || Number.isNaN(n)) return "—";
  if (n === 0) return "0";
  if (n < 10) return n.toFixed(2);
  return compact(n);
}
function duration(sec) {
  if (sec == null || Number.isNaN(sec)) return "—";
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return sec + "s";
  const m = Math.floor(sec / 60), s = sec % 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
function parseTime(t) {
  if (t == null) return null;
  if (typeof t === "number") return new Date(t < 1e12 ? t * 1000 : t);
  // Naive ISO strings from the database are UTC.
  const s = /[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t : t + "Z";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}
function ago(t) {
  const d = parseTime(t);
  if (!d) return "—";
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 5) return "just now";
  if (s < 3600 * 24) return duration(s) + " ago";
  return d.toLocaleDateString();
}
function stamp(t) {
  const d = parseTime(t);
  if (!d) return "—";
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}
const labelOf = (e) => e.label || e.type || "?";
const labelClass = (l) => (["PER", "LOC", "ORG"].includes(l) ? l : "X");
const jobName = (j) => j.name || j.source || `Job ${j.job_id}`;

function toast(msg, isError = false) {
  const el = document.getElementById("toast");
  el.textContent = msg;
  el.className = "toast" + (isError ? " error" : "");
  el.hidden = false;
  clearTimeout(toast._t);
  toast._t = setTimeout(() => { el.hidden = true; }, 4000);
}

// ── API key (kept for this tab only; every request sends it) ───────────────
const KEY_STORE = "shiti.apiKey";
const apiKey = () => sessionStorage.getItem(KEY_STORE);
function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: authHeaders({ Accept: "application/json", ...(opts.headers || {}) }) });
  if (res.status === 401) {
    // No key, or it was revoked: ask again (and stop whatever view was loading).
    sessionStorage.removeItem(KEY_STORE);
    showKeyPrompt("This service needs an API key.");
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
const items = (r) => (Array.isArray(r) ? r : r.items || []);

function poll(fn) {
  clearInterval(pollTimer);
  const token = routeToken;
  const tick = async () => {
    if (token !== routeToken || document.hidden) return;
    try { await fn(); } catch (e) { /* a failed refresh is retried on the next tick */ }
  };
  pollTimer = setInterval(tick, POLL_MS);
}

// ── shared fragments ───────────────────────────────────────────────────────
function badge(state) {
  const s = state || "unknown";
  return `<span class="badge ${esc(s)}" data-testid="job-state">${esc(s.replace("_", " "))}</span>`;
}

function progressBar(j, large = false) {
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

function highlight(text, entities, { linkable = false } = {}) {
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

function legend(entities, interactive = false, showCounts = true) {
  const counts = {};
  for (const e of entities || []) counts[labelOf(e)] = (counts[labelOf(e)] || 0) + 1;
  const labels = [...new Set(["PER", "LOC", "ORG", ...Object.keys(counts)])];
  return `<div class="legend" data-testid="legend">${labels.map((l) => {
    const tag = interactive ? "button" : "span";
    return `<${tag} class="chip chip-${labelClass(l)}" data-label="${esc(l)}"><b>${esc(l)}</b>${LABEL_NAMES[l] ? ` ${esc(LABEL_NAMES[l])}` : ""}${showCounts ? ` <span class="n">${counts[l] || 0}</span>` : ""}</${tag}>`;
  }).join("")}</div>`;
}

// ── throughput chart (SVG, drawn by hand) ──────────────────────────────────
function chartSvg(points) {
  const W = 720, H = 220, L = 48, R = 16, T = 14, B = 28;
  if (!points || points.length < 2) {
    return `<div class="empty small" data-testid="chart-empty">Throughput appears here once documents complete.</div>`;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const maxY = Math.max(...points.map((p) => p.docs), 0.001);
  // Axis ticks at 1/2/5 x 10^k steps, 4-5 of them.
  const step = (() => { const raw = maxY / 4, p = Math.pow(10, Math.floor(Math.log10(raw))); for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p; return 10 * p; })();
  const ticks = Math.ceil(maxY / step - 1e-9);
  const niceMax = step * ticks;
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1e-9)) * (W - L - R);
  const y = (v) => T + (1 - v / niceMax) * (H - T - B);
  let grid = "";
  for (let i = 0; i <= ticks; i++) {
    const v = step * i, yy = y(v);
    grid += `<line class="gridline" x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}"/>`;
    grid += `<text class="axis-label" x="${L - 8}" y="${yy + 4}" text-anchor="end">${v >= 1e4 ? compact(v) : +v.toPrecision(3)}</text>`;
  }
  const span = t1 - t0;
  const when = (d) => (span < 20 ? `+${d.toFixed(1)}s` : `+${duration(d)}`);
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (span * i) / 4;
    grid += `<text class="axis-label" x="${x(t)}" y="${H - 8}" text-anchor="${i === 0 ? "start" : i === 4 ? "end" : "middle"}">${when(t - t0)}</text>`;
  }
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.docs).toFixed(1)}`).join("");
  const area = `${line}L${x(t1).toFixed(1)},${y(0)}L${x(t0).toFixed(1)},${y(0)}Z`;
  const maxC = Math.max(...points.map((p) => p.chars || 0), 0);
  const line2 = maxC > 0
    ? points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${(T + (1 - (p.chars || 0) / maxC) * (H - T - B)).toFixed(1)}`).join("")
    : "";
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" data-testid="chart" role="img" aria-label="documents per second over time">
    <defs><linearGradient id="chart-fill" x1="0" x2="0" y1="0" y2="1">
      <stop offset="0%" stop-color="#6366f1" stop-opacity=".28"/><stop offset="100%" stop-color="#6366f1" stop-opacity="0"/>
    </linearGradient></defs>
    ${grid}<path class="area" d="${area}"/>${line2 ? `<path class="line2" d="${line2}"/>` : ""}<path class="line" d="${line}"/>
  </svg>`;
}

// ── views ──────────────────────────────────────────────────────────────────
const jobsState = { filter: "", cursor: null, extra: [] };

function jobRow(j) {
  const live = !TERMINAL.has(j.state);
  return `<tr class="clickable" data-job="${esc(j.job_id)}" data-testid="job-row">
    <td><div class="job-title">${esc(jobName(j))}</div><div class="job-id">#${esc(j.job_id)} · ${esc(ago(j.submitted_at))}</div></td>
    <td>${badge(j.state)}</td>
    <td style="min-width:220px">${progressBar(j)}</td>
    <td class="num rate">${live ? `${rate(j.docs_per_second)} <small>doc/s</small><br>${rate(j.chars_per_second)} <small>字/s</small>` : `<small>took</small> ${esc(duration(elapsed(j)))}`}</td>
    <td class="num">${live ? duration(j.eta_seconds) : (j.failed ? `<span style="color:var(--bad)">${num(j.failed)} failed</span>` : "✓")}</td>
  </tr>`;
}
function elapsed(j) {
  const a = parseTime(j.started_at || j.submitted_at), b = parseTime(j.finished_at);
  return a && b ? (b - a) / 1000 : null;
}

async function viewJobs() {
  const token = routeToken;
  app.innerHTML = `
    <div class="page-head">
      <div><h1>Extraction jobs</h1><div class="sub">Upload a corpus, watch it being tagged, browse the entities.</div></div>
    </div>
    <div class="grid grid-2 stretch" style="margin-bottom:24px">
      ${uploadCard()}
      ${tryCard(true)}
    </div>
    <div class="card flush">
      <div class="card-head">
        <h2>All jobs</h2>
        <div class="segmented" id="state-filter">
          ${["", ...STATES].map((s) =>
            `<button data-state="${s}" class="${s === jobsState.filter ? "on" : ""}">${s ? s.replace("_", " ") : "all"}</button>`).join("")}
        </div>
      </div>
      <div style="margin-top:14px" id="jobs-table"><div class="empty">Loading…</div></div>
    </div>`;
  bindUpload();
  bindTry();
  document.getElementById("state-filter").addEventListener("click", (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    jobsState.filter = b.dataset.state; jobsState.extra = []; jobsState.cursor = null;
    document.querySelectorAll("#state-filter button").forEach((x) => x.classList.toggle("on", x === b));
    refresh();
  });
  async function refresh() {
    const q = new URLSearchParams({ limit: "25" });
    if (jobsState.filter) q.set("state", jobsState.filter);
    const page = await api(`/jobs?${q}`);
    if (token !== routeToken) return;
    jobsState.cursor = page.next_cursor || null;
    const rows = [...items(page), ...jobsState.extra];
    const el = document.getElementById("jobs-table");
    if (!rows.length) {
      el.innerHTML = `<div class="empty"><div class="big">📭</div>No jobs yet — upload a corpus or try a sentence above.</div>`;
      return;
    }
    el.innerHTML = `<table><thead><tr><th>Job</th><th>State</th><th>Progress</th><th class="num">Rate</th><th class="num">ETA</th></tr></thead>
      <tbody>${rows.map(jobRow).join("")}</tbody></table>
      ${jobsState.cursor ? `<div class="table-foot"><button class="btn btn-sm" id="jobs-more">Load more</button></div>` : ""}`;
    el.querySelectorAll("tr[data-job]").forEach((tr) => tr.addEventListener("click", () => { location.hash = `#/jobs/${tr.dataset.job}`; }));
    const more = document.getElementById("jobs-more");
    if (more) more.addEventListener("click", async () => {
      const q2 = new URLSearchParams({ limit: "25", cursor: jobsState.cursor });
      if (jobsState.filter) q2.set("state", jobsState.filter);
      const next = await api(`/jobs?${q2}`);
      jobsState.extra.push(...items(next));
      refresh();
    });
  }
  await refresh().catch((e) => toast(e.message, true));
  poll(refresh);
}

function uploadCard() {
  return `<form class="card" id="upload-form" data-testid="upload-form">
    <div class="card-head"><h2>New job</h2><span class="hint">JSONL · TXT · CSV · JSON</span></div>
    <label class="dropzone" id="dropzone">
      <input type="file" name="file" id="upload-file" data-testid="upload-file">
      <div class="big">Drop a corpus file here, or click to choose</div>
      <div class="muted small">One document per line (txt), <code>{"id","text"}</code> records (jsonl/json), or a CSV</div>
      <div class="file-name" id="file-name"></div>
    </label>
    <div class="form-row">
      <label class="field">Name <input type="text" name="name" placeholder="optional" data-testid="upload-name"></label>
      <label class="field">Format
        <select name="format"><option value="">auto-detect</option><option value="jsonl">JSON Lines</option><option value="text">text, one per line</option><option value="csv">CSV</option><option value="json">JSON array</option></select>
      </label>
      <label class="field">Client token <input type="text" name="client_token" placeholder="idempotency key"></label>
    </div>
    <div class="form-row">
      <label class="field">Model <select name="model" data-testid="upload-model"><option value="">default</option></select></label>
      <label class="field">Priority <input type="number" name="priority" min="1" max="100" value="1"></label>
      <label class="field">Webhook <input type="url" name="notify" placeholder="https://… (optional)"></label>
    </div>
    <div class="actions" style="margin-top:16px"><button class="btn btn-primary" type="submit" data-testid="upload-submit">Submit job</button></div>
  </form>`;
}

function modelOptions(models) {
  return models.filter((m) => m.ok).map((m) => `<option value="${esc(m.name)}">${esc(m.name)} · ${m.workers} worker${m.workers === 1 ? "" : "s"}</option>`).join("");
}

function bindUpload() {
  const form = document.getElementById("upload-form");
  api("/models").then((ms) => { form.elements.model.insertAdjacentHTML("beforeend", modelOptions(ms)); }).catch(() => {});
  const input = document.getElementById("upload-file");
  const zone = document.getElementById("dropzone");
  const showName = () => { document.getElementById("file-name").textContent = input.files[0] ? `${input.files[0].name} · ${compact(input.files[0].size)} B` : ""; };
  input.addEventListener("change", showName);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); input.files = e.dataTransfer.files; showName(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!input.files[0]) { toast("Choose a corpus file first", true); return; }
    const fd = new FormData();
    fd.append("file", input.files[0]);
    for (const k of ["name", "format", "client_token", "model", "priority", "notify"]) if (form.elements[k].value) fd.append(k, form.elements[k].value);
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      const r = await api("/jobs", { method: "POST", body: fd });
      toast(`Job ${r.job_id} submitted: ${num(r.documents)} documents${r.rejected ? `, ${num(r.rejected)} rejected` : ""}`);
      location.hash = `#/jobs/${r.job_id}`;
    } catch (e) { toast(`Upload failed: ${e.message}`, true); } finally { btn.disabled = false; }
  });
}

function tryCard(compactCard = false) {
  return `<form class="card" id="try-form" data-testid="try-form">
    <div class="card-head"><h2>Try a sentence</h2><span class="hint">试一试：输入一句中文</span></div>
    <textarea name="text" rows="${compactCard ? 4 : 6}" data-testid="try-text">${esc(SAMPLE)}</textarea>
    <div class="actions" style="margin-top:12px"><button class="btn btn-primary" type="submit" data-testid="try-submit">Extract entities</button></div>
    <div id="try-result"></div>
  </form>`;
}

function bindTry() {
  const form = document.getElementById("try-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = form.elements.text.value;
    const btn = form.querySelector("button[type=submit]");
    const out = document.getElementById("try-result");
    btn.disabled = true; btn.innerHTML = `<span class="spinner"></span> Extracting…`;
    try {
      const r = await api("/extract", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }) });
      out.innerHTML = `<div class="try-result" data-testid="try-output">
        <div class="doc-text">${highlight(r.text ?? text, r.entities)}</div>
        <div style="margin-top:12px">${legend(r.entities)}</div></div>`;
    } catch (e) {
      out.innerHTML = `<div class="try-result" style="color:var(--bad)">${esc(e.status === 504 ? "The workers did not answer in time — are any running?" : e.message)}</div>`;
    } finally { btn.disabled = false; btn.textContent = "Extract entities"; }
  });
}

async function viewTry() {
  app.innerHTML = `<div class="page-head"><div><h1>Try a sentence</h1>
    <div class="sub">The text is submitted as a one-document job and answered as soon as a worker has tagged it.</div></div></div>
    <div class="grid grid-3-1">${tryCard(false)}
      <div class="card"><h2 style="margin-bottom:10px">Entity types</h2>${legend([], false, false)}
        <p class="muted small" style="margin-top:14px">PER 人名 — people · LOC 地名 — places · ORG 机构 — organisations.
        Offsets are end-exclusive Unicode code points into the stored text.</p></div></div>`;
  bindTry();
}

// Throughput history: the server's per-bucket completions when available, else samples of polls.
const samples = new Map();
function clientSamples(j) {
  const list = samples.get(j.job_id) || [];
  const now = Date.now() / 1000;
  list.push({ t: now, done: (j.done || 0) + (j.failed || 0), chars: j.chars_done || 0 });
  while (list.length > 400) list.shift();
  samples.set(j.job_id, list);
  const pts = [];
  for (let i = 1; i < list.length; i++) {
    const dt = list[i].t - list[i - 1].t;
    if (dt > 0) pts.push({ t: list[i].t, docs: (list[i].done - list[i - 1].done) / dt, chars: (list[i].chars - list[i - 1].chars) / dt });
  }
  return pts;
}

async function viewJob(id) {
  const token = routeToken;
  const ent = { type: "", text: "", doc: "", cursor: null, rows: [] };
  app.innerHTML = `<div class="empty">Loading job…</div>`;
  let job;
  try { job = await api(`/jobs/${encodeURIComponent(id)}`); } catch (e) { return notFound(e); }
  if (token !== routeToken) return;
  app.innerHTML = `
    <div class="crumbs"><a href="#/">Jobs</a> / #${esc(id)}</div>
    <div class="page-head">
      <div><h1 id="job-title">${esc(jobName(job))}</h1><div class="sub" id="job-sub"></div></div>
      <div class="actions">
        <button class="btn btn-danger" id="btn-cancel" data-testid="cancel">Cancel</button>
        <button class="btn" id="btn-retry" data-testid="retry">Retry failed</button>
        <button class="btn" id="btn-export" data-testid="export">Export JSONL</button>
      </div>
    </div>
    <div class="callout warn" id="job-waiting" data-testid="job-waiting" hidden></div>
    <form class="card form-row" id="rerun-form" data-testid="rerun-form" style="margin-bottom:20px">
      <label class="field">Re-run these documents with <select name="model"><option value="">default model</option></select></label>
      <button class="btn" type="submit" data-testid="rerun">Re-run</button>
      <label class="field">Compare with job <input type="text" name="other" placeholder="job id" data-testid="diff-other"></label>
      <button class="btn" type="button" id="btn-diff" data-testid="diff">Diff</button>
    </form>
    <div class="card" style="margin-bottom:20px"><div id="job-progress"></div></div>
    <div class="stats" id="job-stats" style="margin-bottom:20px"></div>
    <div class="grid grid-3-1" style="margin-bottom:20px">
      <div class="card">
        <div class="card-head"><h2>Throughput</h2>
          <div class="chart-legend"><span><i style="background:var(--accent)"></i>documents / s</span><span><i style="background:var(--loc)"></i>characters / s (scaled)</span></div></div>
        <div id="job-chart"></div>
        <h3 style="margin:22px 0 10px">Timeline</h3>
        <dl class="kv" id="job-timeline"></dl>
      </div>
      <div class="card"><div class="card-head"><h2>Top entities</h2></div><div id="top-ents"><div class="muted small">Loading…</div></div></div>
    </div>
    <div class="card flush" style="margin-bottom:20px" id="failures-card" hidden>
      <div class="card-head"><h2>Failures</h2><span class="hint">reasons recorded per document</span></div>
      <div style="margin-top:12px" id="failures"></div>
    </div>
    <div class="card flush" data-testid="entity-browser">
      <div class="card-head"><h2>Entities</h2>
        <form class="form-row" id="ent-filter" style="flex:1;justify-content:flex-end;max-width:720px">
          <div class="segmented" id="ent-type" style="flex:0 0 auto">
            ${["", "PER", "LOC", "ORG"].map((t) => `<button type="button" data-type="${t}" class="${t ? "" : "on"}">${t || "all"}</button>`).join("")}
          </div>
          <input type="search" name="text" placeholder="entity text, e.g. 北京" data-testid="ent-text">
          <input type="search" name="doc" placeholder="document id" style="max-width:150px">
        </form>
      </div>
      <div style="margin-top:14px" id="ents"></div>
    </div>`;

  document.getElementById("btn-cancel").addEventListener("click", async () => {
    if (!confirm("Cancel this job? Documents not yet tagged will be skipped.")) return;
    try { await api(`/jobs/${id}/cancel`, { method: "POST" }); toast("Cancellation requested"); refresh(); } catch (e) { toast(e.message, true); }
  });
  document.getElementById("btn-retry").addEventListener("click", async () => {
    try { const r = await api(`/jobs/${id}/retry`, { method: "POST" }); toast(`Re-queued ${num(r.retried ?? r.requeued ?? r.count ?? 0)} failed documents`); refresh(); } catch (e) { toast(e.message, true); }
  });

  const rerunForm = document.getElementById("rerun-form");
  api("/models").then((ms) => rerunForm.elements.model.insertAdjacentHTML("beforeend", modelOptions(ms))).catch(() => {});
  rerunForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (rerunForm.elements.model.value) q.set("model", rerunForm.elements.model.value);
    try {
      const r = await api(`/jobs/${id}/rerun?${q}`, { method: "POST" });
      toast(`Job ${r.job_id} re-runs ${num(r.documents)} documents`);
      location.hash = `#/jobs/${r.job_id}`;
    } catch (e) { toast(e.message, true); }
  });
  document.getElementById("btn-diff").addEventListener("click", () => {
    const other = rerunForm.elements.other.value.trim() || job.rerun_of;
    if (other) location.hash = `#/jobs/${id}/diff/${encodeURIComponent(other)}`; else toast("Give the id of a job over the same documents", true);
  });

  const entForm = document.getElementById("ent-filter");
  let debounce;
  entForm.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { ent.text = entForm.elements.text.value.trim(); ent.doc = entForm.elements.doc.value.trim(); loadEntities(true); }, 250); });
  entForm.addEventListener("submit", (e) => e.preventDefault());
  document.getElementById("ent-type").addEventListener("click", (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    ent.type = b.dataset.type;
    document.querySelectorAll("#ent-type button").forEach((x) => x.classList.toggle("on", x === b));
    loadEntities(true); loadTop();
  });

  let entSeq = 0;
  async function loadEntities(reset) {
    // Refreshes overlap (a poll and a filter change): only the latest call may render, or a
    // page would be appended twice.
    const seq = ++entSeq;
    if (reset) { ent.cursor = null; ent.rows = []; }
    const q = new URLSearchParams({ limit: "25" });
    if (ent.type) q.set("type", ent.type);
    if (ent.text) q.set("text", ent.text);
    if (ent.doc) q.set("doc", ent.doc);
    if (ent.cursor) q.set("cursor", ent.cursor);
    const page = await api(`/jobs/${id}/entities?${q}`);
    if (token !== routeToken || seq !== entSeq) return;
    ent.rows.push(...items(page));
    ent.cursor = page.next_cursor || null;
    const el = document.getElementById("ents");
    if (!ent.rows.length) { el.innerHTML = `<div class="empty">No entities ${ent.type || ent.text || ent.doc ? "match these filters" : "yet"}.</div>`; return; }
    el.innerHTML = `<table><thead><tr><th>Entity</th><th>Type</th><th>Document</th><th class="num">Offsets</th><th class="num">Score</th></tr></thead><tbody>
      ${ent.rows.map((e) => `<tr class="clickable" data-doc="${esc(e.doc_id)}" data-testid="entity-row">
        <td class="ent-text">${esc(e.text)}</td><td><span class="chip chip-${labelClass(labelOf(e))}">${esc(labelOf(e))}</span></td>
        <td><a href="#/jobs/${esc(id)}/docs/${encodeURIComponent(e.doc_id)}">${esc(e.doc_id)}</a></td>
        <td class="num mono">${e.start}–${e.end}</td><td class="num">${e.score != null ? (e.score * 100).toFixed(1) + "%" : "—"}</td></tr>`).join("")}
      </tbody></table>${ent.cursor ? `<div class="table-foot"><button class="btn btn-sm" id="ents-more">Load more</button></div>` : ""}`;
    el.querySelectorAll("tr[data-doc]").forEach((tr) => tr.addEventListener("click", (ev) => { if (!ev.target.closest("a")) location.hash = `#/jobs/${id}/docs/${encodeURIComponent(tr.dataset.doc)}`; }));
    const more = document.getElementById("ents-more");
    if (more) more.addEventListener("click", () => loadEntities(false));
  }

  async function loadTop() {
    const q = new URLSearchParams({ limit: "12" });
    if (ent.type) q.set("type", ent.type);
    // The API ranks per label; the card shows the overall leaders.
    const top = items(await api(`/jobs/${id}/entities/top?${q}`)).sort((a, b) => b.count - a.count).slice(0, 12);
    if (token !== routeToken) return;
    const el = document.getElementById("top-ents");
    if (!top.length) { el.innerHTML = `<div class="muted small">No entities yet.</div>`; return; }
    const max = Math.max(...top.map((t) => t.count));
    el.innerHTML = `<ul class="top-list" data-testid="top-entities">${top.map((t) => `
      <li><span><span class="ent-text">${esc(t.text)}</span> <span class="chip chip-${labelClass(labelOf(t))}">${esc(labelOf(t))}</span></span>
      <span class="cnt">${num(t.count)}</span><span class="bar"><span class="bar-${labelClass(labelOf(t))}" style="width:${(100 * t.count) / max}%"></span></span></li>`).join("")}</ul>`;
  }

  let lastDone = -1;
  async function refresh() {
    const j = await api(`/jobs/${id}`);
    if (token !== routeToken) return;
    renderJob(j);
    const pts = await api(`/jobs/${id}/throughput`).then((r) => r.points).catch(() => null);
    document.getElementById("job-chart").innerHTML = chartSvg(pts && pts.length >= 2 ? pts : clientSamples(j));
    const doneNow = (j.done || 0) + (j.failed || 0);
    if (doneNow !== lastDone) { lastDone = doneNow; loadTop().catch(() => {}); if (!ent.cursor && !ent.text && !ent.doc) loadEntities(true).catch(() => {}); }
    if (TERMINAL.has(j.state)) clearInterval(pollTimer);
  }

  function renderJob(j) {
    const live = !TERMINAL.has(j.state);
    document.getElementById("job-sub").innerHTML = `${badge(j.state)} &nbsp; <span class="job-id">#${esc(j.job_id)}</span>`;
    const sub = parseTime(j.submitted_at), st = parseTime(j.started_at), fin = parseTime(j.finished_at);
    const kv = [
      ["Submitted", stamp(j.submitted_at)],
      ["Started", st ? `${stamp(j.started_at)} <span class="muted">(waited ${duration((st - sub) / 1000)})</span>` : "waiting for a worker"],
      ["Finished", fin ? stamp(j.finished_at) : live ? `ETA ${duration(j.eta_seconds)}` : "—"],
      ["Run time", st ? duration(((fin || new Date()) - st) / 1000) : "—"],
      ["Average document", j.total ? `${num(Math.round(j.chars_total / j.total))} characters` : "—"],
      ["Model", j.model ? `${esc(j.model)} <span class="mono muted" title="content sha256">${esc((j.model_hash || "").slice(0, 12))}</span>` : "—"],
      ["Priority", num(j.priority || 1)],
    ];
    if (j.rerun_of) kv.push(["Re-run of", `<a href="#/jobs/${esc(j.rerun_of)}">#${esc(j.rerun_of)}</a> · <a href="#/jobs/${esc(j.rerun_of)}/diff/${esc(j.job_id)}" data-testid="diff-link">diff</a>`]);
    if (j.error) kv.push(["Ingest", `<span class="bad" data-testid="job-error">${esc(j.error)}</span>`]);
    if (j.notify) kv.push(["Webhook", `${esc(j.notify.state)}, ${num(j.notify.attempts)} attempts${j.notify.last_error ? ` <span class="muted">(${esc(j.notify.last_error)})</span>` : ""}`]);
    const waiting = document.getElementById("job-waiting");
    waiting.hidden = !j.waiting_for;
    waiting.textContent = j.waiting_for ? `Waiting for ${j.waiting_for}: no live worker serves this job's model.` : "";
    document.getElementById("job-timeline").innerHTML = kv.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    document.getElementById("job-progress").innerHTML = progressBar(j, true);
    document.getElementById("btn-cancel").disabled = !live || j.state === "cancelling";
    document.getElementById("btn-retry").disabled = !(j.failed > 0) || live;
    const stat = (label, value, cls = "", test = "") => `<div class="stat ${cls}"${test ? ` data-testid="${test}"` : ""}><div class="label">${label}</div><div class="value">${value}</div></div>`;
    document.getElementById("job-stats").innerHTML = [
      stat("Documents", num(j.total)),
      stat("Done", num(j.done), "ok", "stat-done"),
      stat("Failed", num(j.failed), j.failed ? "bad" : ""),
      stat("In flight", num((j.pending || 0) + (j.processing || 0)), "info"),
      stat("Characters", `${compact(j.chars_done)}<small>/ ${compact(j.chars_total)}</small>`),
      stat("Speed", `${rate(j.docs_per_second)}<small>doc/s</small>`),
      stat("Chars / s", `${rate(j.chars_per_second)}<small>字/s</small>`),
      stat(live ? "ETA" : "Took", live ? duration(j.eta_seconds) : duration(elapsed(j))),
    ].join("");
    const fails = j.failures || [];
    const card = document.getElementById("failures-card");
    card.hidden = !fails.length && !j.failed;
    document.getElementById("failures").innerHTML = failuresTable(fails, j);
  }

  function failuresTable(fails, j) {
    if (!fails.length) return `<div class="empty small">${num(j.failed)} failed documents.</div>`;
    // failures is either a reason -> count summary or a list of per-document rows.
    if (!Array.isArray(fails)) {
      return `<table class="failures"><thead><tr><th>Reason</th><th class="num">Documents</th></tr></thead><tbody>
        ${Object.entries(fails).map(([r, n]) => `<tr><td class="reason"><span class="badge failed">${esc(r)}</span></td><td class="num">${num(n)}</td></tr>`).join("")}</tbody></table>`;
    }
    return `<table class="failures"><thead><tr><th>Document</th><th>Reason</th><th>Message</th></tr></thead><tbody>
      ${fails.map((f) => `<tr><td><a href="#/jobs/${esc(id)}/docs/${encodeURIComponent(f.doc_id ?? f.ext_id ?? "")}">${esc(f.doc_id ?? f.ext_id ?? "—")}</a></td>
        <td class="reason"><span class="badge failed">${esc(f.reason || "error")}</span></td><td class="msg">${esc(f.error || f.message || f.last_error || "")}</td></tr>`).join("")}
    </tbody></table>`;
  }

  await refresh().catch((e) => toast(e.message, true));
  loadEntities(true).catch((e) => toast(e.message, true));
  if (!TERMINAL.has(job.state)) poll(refresh);
}

async function viewDoc(id, docId) {
  const token = routeToken;
  app.innerHTML = `<div class="empty">Loading document…</div>`;
  let d;
  try { d = await api(`/jobs/${encodeURIComponent(id)}/documents/${encodeURIComponent(docId)}`); } catch (e) { return notFound(e); }
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
        <div class="card-head"><h2>Text</h2>${legend(ents, true)}</div>
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

async function viewDiff(a, b) {
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

function notFound(e) {
  app.innerHTML = `<div class="card empty"><div class="big">🔍</div><h2>${e.status === 404 ? "Not found" : "Something went wrong"}</h2>
    <p class="muted">${esc(e.message)}</p><a class="btn" href="#/">Back to jobs</a></div>`;
}

// ── router ─────────────────────────────────────────────────────────────────
function route() {
  routeToken++;
  clearInterval(pollTimer);
  const h = location.hash.replace(/^#/, "") || "/";
  const parts = h.split("/").filter(Boolean).map(decodeURIComponent);
  document.querySelectorAll(".topnav a[data-nav]").forEach((a) => a.classList.toggle("active",
    (a.dataset.nav === "try" && parts[0] === "try") || (a.dataset.nav === "jobs" && parts[0] !== "try")));
  window.scrollTo(0, 0);
  if (parts[0] === "try") return viewTry();
  if (parts[0] === "jobs" && parts[1] && parts[2] === "docs" && parts[3] != null) return viewDoc(parts[1], parts.slice(3).join("/"));
  if (parts[0] === "jobs" && parts[1] && parts[2] === "diff" && parts[3]) return viewDiff(parts[1], parts[3]);
  if (parts[0] === "jobs" && parts[1]) return viewJob(parts[1]);
  return viewJobs();
}
// ── key prompt, identity, sign-out ─────────────────────────────────────────
function showKeyPrompt(message) {
  routeToken++;
  clearInterval(pollTimer);
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
    sessionStorage.setItem(KEY_STORE, ev.target.elements.key.value.trim());
    boot();
  });
}

function signOut() {
  sessionStorage.removeItem(KEY_STORE);
  showKeyPrompt("Signed out.");
}

async function downloadExport(id) {
  // A plain link cannot send the key: fetch the file and hand the browser a blob.
  const res = await fetch(`/jobs/${encodeURIComponent(id)}/export`, { headers: authHeaders() });
  if (!res.ok) { toast(`Export failed (${res.status})`, true); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = `job-${id}.jsonl`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function boot() {
  let who;
  try {
    who = await api("/whoami");
    const s = await api("/states");
    STATES = s.job.states;
    TERMINAL = new Set(s.job.terminal);
  } catch (e) {
    if (e.status !== 401) toast(`Could not reach the API: ${e.message}`, true);
    return;
  }
  const badge = document.getElementById("whoami");
  badge.textContent = who.open ? "open (no keys)" : `${who.name} · ${who.scope}`;
  document.getElementById("sign-out").hidden = who.open;
  route();
}

document.addEventListener("click", (ev) => {
  if (ev.target.closest("#sign-out")) signOut();
  const exp = ev.target.closest("#btn-export");
  if (exp) downloadExport(location.hash.split("/")[2]);
});
window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => { /* polls skip while hidden and resume on the next tick */ });
boot();
