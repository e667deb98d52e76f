/* One job: progress, throughput, timeline, failures, re-run/diff, and its entity browser (live). */
import { api, authHeaders, items } from "../api.js";
import { chartSvg } from "../chart.js";
import { compact, duration, elapsed, esc, jobName, labelClass, labelOf, num, orderLabels, parseTime, rate, stamp } from "../format.js";
import { TERMINAL, modelLabels, refreshModels } from "../meta.js";
import { app, poll, routeToken, stopPolling } from "../page.js";
import { badge, modelOptions, notFound, progressBar, toast } from "../ui.js";

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

export async function viewJob(id) {
  const token = routeToken;
  const ent = { type: "", text: "", doc: "", minScore: 0, cursor: null, rows: [] };
  app.innerHTML = `<div class="empty">Loading job…</div>`;
  const pickable = refreshModels();  // the re-run picker's models (and the label cache)
  let job;
  try { job = await api(`/jobs/${encodeURIComponent(id)}`); } catch (e) { return notFound(e); }
  // The type filter offers the labels of the job's model (GET /models), then any met in the data.
  const labels = await modelLabels(job.model);
  if (token !== routeToken) return;
  const seen = new Set();
  let types = [...labels];
  const typeButtons = () => ["", ...types].map((t) =>
    `<button type="button" data-type="${esc(t)}" class="${t === ent.type ? "on" : ""}">${t ? esc(t) : "all"}</button>`).join("");
  app.innerHTML = `
    <div class="crumbs"><a href="#/">Jobs</a> / #${esc(id)}</div>
    <div class="page-head">
      <div><h1 id="job-title">${esc(jobName(job))}</h1><div class="sub" id="job-sub"></div></div>
      <div class="actions">
        <button class="btn" id="btn-pause" data-testid="pause">Pause</button>
        <button class="btn btn-danger" id="btn-cancel" data-testid="cancel">Cancel</button>
        <button class="btn" id="btn-retry" data-testid="retry">Retry failed</button>
        <a class="btn" href="#/jobs/${esc(id)}/corpus" data-testid="corpus-link">Entities at a glance</a>
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
    <div class="card flush" style="margin-bottom:20px" id="failures-card" data-testid="failures-card" hidden>
      <div class="card-head"><h2>Failed documents</h2><span class="hint">every failed document with its reason</span>
        <div class="segmented" id="fail-reasons" data-testid="fail-reasons" style="margin-left:auto"></div>
        <button class="btn btn-sm" id="btn-retry-reason" data-testid="retry-reason" style="display:none">Retry these</button></div>
      <div style="margin-top:12px" id="failures"></div>
    </div>
    <div class="card flush" data-testid="entity-browser">
      <div class="card-head"><h2>Entities</h2>
        <form class="form-row" id="ent-filter" style="flex:1;justify-content:flex-end;max-width:720px">
          <div class="segmented" id="ent-type" style="flex:0 0 auto">
            ${typeButtons()}
          </div>
          <input type="search" name="text" placeholder="entity text, e.g. 北京" data-testid="ent-text">
          <input type="search" name="doc" placeholder="document id" style="max-width:150px">
          <label class="small muted" title="only entities whose score (the probability the entity is right) is at least this">
            score ≥ <output name="minScoreOut" data-testid="min-score-out">0.00</output>
            <input type="range" name="minScore" min="0" max="1" step="0.05" value="0" data-testid="min-score" style="width:90px;vertical-align:middle">
          </label>
        </form>
      </div>
      <div style="margin-top:14px" id="ents"></div>
    </div>`;

  // Labels met in the data that the models did not list get a filter button too.
  function noteLabels(rows) {
    for (const r of rows) seen.add(labelOf(r));
    const next = [...new Set([...labels, ...orderLabels(seen)])];
    if (next.length === types.length) return;
    types = next;
    document.getElementById("ent-type").innerHTML = typeButtons();
  }

  document.getElementById("btn-pause").addEventListener("click", async (ev) => {
    const resume = ev.currentTarget.dataset.paused === "true";
    try {
      await api(`/jobs/${id}/${resume ? "resume" : "pause"}`, { method: "POST" });
      toast(resume ? "Resumed: its batches are handed out again" : "Paused: running documents finish, nothing new starts");
      refresh();
    } catch (e) { toast(e.message, true); }
  });
  document.getElementById("btn-cancel").addEventListener("click", async () => {
    if (!confirm("Cancel this job? Documents not yet tagged will be skipped.")) return;
    try { await api(`/jobs/${id}/cancel`, { method: "POST" }); toast("Cancellation requested"); refresh(); } catch (e) { toast(e.message, true); }
  });
  document.getElementById("btn-retry").addEventListener("click", async () => {
    try { const r = await api(`/jobs/${id}/retry`, { method: "POST" }); toast(`Re-queued ${num(r.retried ?? r.requeued ?? r.count ?? 0)} failed documents`); refresh(); poll(refresh); } catch (e) { toast(e.message, true); }
  });

  const rerunForm = document.getElementById("rerun-form");
  pickable.then((ms) => rerunForm.elements.model.insertAdjacentHTML("beforeend", modelOptions(ms))).catch(() => {});
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
  entForm.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { ent.text = entForm.elements.text.value.trim(); ent.doc = entForm.elements.doc.value.trim(); ent.minScore = Number(entForm.elements.minScore.value) || 0; entForm.elements.minScoreOut.value = ent.minScore.toFixed(2); loadEntities(true); }, 250); });
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
    if (ent.minScore > 0) q.set("min_score", String(ent.minScore));
    if (ent.cursor) q.set("cursor", ent.cursor);
    const page = await api(`/jobs/${id}/entities?${q}`);
    if (token !== routeToken || seq !== entSeq) return;
    ent.rows.push(...items(page));
    ent.cursor = page.next_cursor || null;
    noteLabels(ent.rows);
    const el = document.getElementById("ents");
    if (!ent.rows.length) { el.innerHTML = `<div class="empty">No entities ${ent.type || ent.text || ent.doc || ent.minScore ? "match these filters" : "yet"}.</div>`; return; }
    el.innerHTML = `<table><thead><tr><th>Entity</th><th>Type</th><th>Document</th><th class="num">Offsets</th><th class="num">Score</th><th>Source</th></tr></thead><tbody>
      ${ent.rows.map((e) => `<tr class="clickable" data-doc="${esc(e.doc_id)}" data-testid="entity-row">
        <td class="ent-text">${esc(e.text)}</td><td><span class="chip chip-${labelClass(labelOf(e))}">${esc(labelOf(e))}</span></td>
        <td><a href="#/jobs/${esc(id)}/docs/${encodeURIComponent(e.doc_id)}">${esc(e.doc_id)}</a></td>
        <td class="num mono">${e.start}–${e.end}</td><td class="num">${e.score != null ? (e.score * 100).toFixed(1) + "%" : "—"}</td>
        <td class="small muted" data-testid="entity-source" title="model: the model found it; dict: the job's dictionary forced it; both: they agree">${esc(e.source || "model")}</td></tr>`).join("")}
      </tbody></table>${ent.cursor ? `<div class="table-foot"><button class="btn btn-sm" id="ents-more">Load more</button></div>` : ""}`;
    el.querySelectorAll("tr[data-doc]").forEach((tr) => tr.addEventListener("click", (ev) => { if (!ev.target.closest("a")) location.hash = `#/jobs/${id}/docs/${encodeURIComponent(tr.dataset.doc)}`; }));
    const more = document.getElementById("ents-more");
    if (more) more.addEventListener("click", () => loadEntities(false));
  }

  async function loadTop() {
    const q = new URLSearchParams({ limit: "12" });
    if (ent.type) q.set("type", ent.type);
    // The API ranks per label; the card shows the overall leaders.
    const ranked = items(await api(`/jobs/${id}/entities/top?${q}`));
    if (token !== routeToken) return;
    noteLabels(ranked);
    const top = ranked.sort((a, b) => b.count - a.count).slice(0, 12);
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
    if (doneNow !== lastDone) { lastDone = doneNow; loadTop().catch(() => {}); if (!ent.cursor && !ent.text && !ent.doc && !ent.minScore) loadEntities(true).catch(() => {}); }
    if (TERMINAL.has(j.state)) stopPolling();
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
      ["Dictionary", j.dictionary ? `${esc(j.dictionary)} <span class="mono muted" title="content sha256">${esc((j.dictionary_hash || "").slice(0, 12))}</span>` : "none"],
      ["Script fold", j.fold ? `Traditional → Simplified <span class="mono muted" title="fold table">${esc(j.fold)}</span>` : "off"],
      ["Priority", num(j.priority || 1) + (j.paused ? ` <span class="chip" data-testid="paused">paused</span>` : "")],
      ["Reuse", j.incremental ? `incremental: <span data-testid="reused">${num(j.reused || 0)}</span> documents reused` : "off (every document tagged)"],
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
    const pauseBtn = document.getElementById("btn-pause");
    pauseBtn.disabled = !live || j.state === "cancelling";
    pauseBtn.dataset.paused = String(!!j.paused);
    pauseBtn.textContent = j.paused ? "Resume" : "Pause";
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
    const card = document.getElementById("failures-card");
    card.hidden = !j.failed;
    // The list is re-read only when the number of failed documents changes.
    if (j.failed && j.failed !== fail.seen) { fail.seen = j.failed; loadFailures(true).catch((e) => toast(e.message, true)); }
  }

  // Failed documents: counts per reason (a filter), the documents page by page, retry by reason.
  const fail = { seen: 0, reason: "", cursor: null, rows: [], seq: 0 };
  // Bad input is not retried (a retry cannot change it); these reasons can be.
  const RETRYABLE = new Set(["error", "poison", "timeout"]);
  async function loadFailures(reset) {
    const seq = ++fail.seq;
    if (reset) { fail.cursor = null; fail.rows = []; }
    const q = new URLSearchParams({ limit: "25" });
    if (fail.reason) q.set("reason", fail.reason);
    if (fail.cursor) q.set("cursor", fail.cursor);
    const page = await api(`/jobs/${id}/failures?${q}`);
    if (token !== routeToken || seq !== fail.seq) return;
    fail.rows.push(...page.items);
    fail.cursor = page.next_cursor || null;
    const total = Object.values(page.by_reason).reduce((a, b) => a + b, 0);
    document.getElementById("fail-reasons").innerHTML = [["", total], ...Object.entries(page.by_reason)].map(([r, n]) =>
      `<button type="button" data-reason="${esc(r)}" class="${r === fail.reason ? "on" : ""}" data-testid="fail-reason">${esc(r || "all")} ${num(n)}</button>`).join("");
    const retry = document.getElementById("btn-retry-reason");
    retry.style.display = RETRYABLE.has(fail.reason) ? "" : "none";  // .btn sets display: [hidden] alone loses
    retry.textContent = `Retry the ${fail.reason} ones`;
    const el = document.getElementById("failures");
    el.innerHTML = `<table class="failures"><thead><tr><th>Document</th><th class="num">Line</th><th>Reason</th><th>Message</th><th class="num">Attempts</th></tr></thead><tbody>
      ${fail.rows.map((f) => `<tr data-testid="failure-row"><td><a href="#/jobs/${esc(id)}/docs/${encodeURIComponent(f.doc_id)}">${esc(f.doc_id)}</a></td>
        <td class="num">${f.line ?? "—"}</td><td class="reason"><span class="badge failed">${esc(f.reason || "error")}</span></td>
        <td class="msg">${esc(f.error || "")}</td><td class="num">${num(f.attempts)}</td></tr>`).join("")}
      </tbody></table>${fail.cursor ? `<div class="table-foot"><button class="btn btn-sm" id="fails-more" data-testid="failures-more">Load more</button></div>` : ""}`;
    const more = document.getElementById("fails-more");
    if (more) more.addEventListener("click", () => loadFailures(false));
  }
  document.getElementById("fail-reasons").addEventListener("click", (ev) => {
    const b = ev.target.closest("button"); if (!b) return;
    fail.reason = b.dataset.reason;
    loadFailures(true).catch((e) => toast(e.message, true));
  });
  document.getElementById("btn-retry-reason").addEventListener("click", async () => {
    try {
      const r = await api(`/jobs/${id}/retry?reason=${encodeURIComponent(fail.reason)}`, { method: "POST" });
      toast(`Re-queued ${num(r.requeued ?? 0)} documents that failed with ${fail.reason}`);
      fail.seen = 0; refresh(); poll(refresh);  // the job runs again: follow it
    } catch (e) { toast(e.message, true); }
  });

  await refresh().catch((e) => toast(e.message, true));
  loadEntities(true).catch((e) => toast(e.message, true));
  if (!TERMINAL.has(job.state)) poll(refresh);
}

export async function downloadExport(id) {
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
