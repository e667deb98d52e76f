/* The jobs page: the upload form, the try card and the job list (live). */
import { api, items } from "../api.js";
import { ago, compact, duration, elapsed, esc, jobName, num, rate } from "../format.js";
import { STATES, TERMINAL, refreshModels } from "../meta.js";
import { app, poll, routeToken } from "../page.js";
import { badge, modelOptions, progressBar, toast } from "../ui.js";
import { bindTry, tryCard } from "./try.js";

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

export async function viewJobs() {
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

function bindUpload() {
  const form = document.getElementById("upload-form");
  refreshModels().then((ms) => { form.elements.model.insertAdjacentHTML("beforeend", modelOptions(ms)); }).catch(() => {});
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
