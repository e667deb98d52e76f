/* Pure helpers: escaping, number and time formatting, entity-label helpers. No DOM, no fetch. */

export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const nf = new Intl.NumberFormat("en-US");
export const num = (n) => (n == null || Number.isNaN(n) ? "—" : nf.format(n));
export function compact(n) {
  if (n == null || Number.isNaN(n)) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return nf.format(Math.round(n));
}
export function rate(n) {
  if (n == null || Number.isNaN(n)) return "—";
  if (n === 0) return "0";
  if (n < 10) return n.toFixed(2);
  return compact(n);
}
export function duration(sec) {
  if (sec == null || Number.isNaN(sec)) return "—";
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return sec + "s";
  const m = Math.floor(sec / 60), s = sec % 60;
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
export function parseTime(t) {
  if (t == null) return null;
  if (typeof t === "number") return new Date(t < 1e12 ? t * 1000 : t);
  // Naive ISO strings from the database are UTC.
  const s = /[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t : t + "Z";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}
export function ago(t) {
  const d = parseTime(t);
  if (!d) return "—";
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 5) return "just now";
  if (s < 3600 * 24) return duration(s) + " ago";
  return d.toLocaleDateString();
}
export function stamp(t) {
  const d = parseTime(t);
  if (!d) return "—";
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}
export function elapsed(j) {
  const a = parseTime(j.started_at || j.submitted_at), b = parseTime(j.finished_at);
  return a && b ? (b - a) / 1000 : null;
}
export const jobName = (j) => j.name || j.source || `Job ${j.job_id}`;

// ── entity labels ───────────────────────────────────────────────────────────
// Which labels exist comes from the models (GET /models, see meta.js) and the data. The page
// knows display names, and has colours in style.css, only for these; in this order they lead.
export const LABEL_NAMES = { PER: "人名", LOC: "地名", ORG: "机构" };
const known = (l) => Object.hasOwn(LABEL_NAMES, l);
export const labelOf = (e) => e.label || e.type || "?";
/** The label's CSS suffix (chip-, ent-, bar-): its own for a known label, else the neutral "X". */
export const labelClass = (l) => (known(l) ? l : "X");
/** The display name of a label: the known Chinese name, else the label itself. */
export const labelName = (l) => (known(l) ? LABEL_NAMES[l] : l);
/** Distinct labels, the known ones first (PER, LOC, ORG), then the others in the order given. */
export function orderLabels(labels) {
  const all = new Set(labels);
  return [...Object.keys(LABEL_NAMES).filter((l) => all.has(l)), ...[...all].filter((l) => !known(l))];
}
