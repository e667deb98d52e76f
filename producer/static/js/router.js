/* Hash routes to views. */
import { newView } from "./page.js";
import { viewCorpus } from "./views/corpus.js";
import { viewDiff } from "./views/diff.js";
import { viewDoc } from "./views/doc.js";
import { viewJob } from "./views/job.js";
import { viewJobs } from "./views/jobs.js";
import { viewTry } from "./views/try.js";

export function route() {
  newView();
  const h = location.hash.replace(/^#/, "") || "/";
  const parts = h.split("/").filter(Boolean).map(decodeURIComponent);
  document.querySelectorAll(".topnav a[data-nav]").forEach((a) => a.classList.toggle("active",
    (a.dataset.nav === "try" && parts[0] === "try") || (a.dataset.nav === "jobs" && parts[0] !== "try")));
  window.scrollTo(0, 0);
  if (parts[0] === "try") return viewTry();
  if (parts[0] === "jobs" && parts[1] && parts[2] === "docs" && parts[3] != null) return viewDoc(parts[1], parts.slice(3).join("/"));
  if (parts[0] === "jobs" && parts[1] && parts[2] === "diff" && parts[3]) return viewDiff(parts[1], parts[3]);
  if (parts[0] === "jobs" && parts[1] && parts[2] === "corpus") return viewCorpus(parts[1]);
  if (parts[0] === "jobs" && parts[1]) return viewJob(parts[1]);
  return viewJobs();
}
