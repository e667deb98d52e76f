/* The throughput chart (SVG, drawn by hand). */
import { compact, duration } from "./format.js";

export function chartSvg(points) {
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
