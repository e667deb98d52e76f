/* The page's charting library, Apache ECharts (pinned in vendor/package-lock.json, installed by
   scripts/bootstrap.sh), loaded once on the first view that draws with it. */

let loading = null;

/** window.echarts, or null when the file is not installed (the views then show tables). */
export function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  if (!loading) {
    loading = new Promise((resolve) => {
      const s = document.createElement("script");
      s.src = "/static/vendor/echarts.min.js";
      s.onload = () => resolve(window.echarts || null);
      s.onerror = () => { loading = null; resolve(null); };
      document.head.appendChild(s);
    });
  }
  return loading;
}

/** The colour of each entity type: the page's own (style.css), else a neutral grey. */
export function labelColor(label) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(`--${String(label).toLowerCase()}`).trim();
  return v || "#64748b";
}
