"""What the CLI and the demo print about a job: a progress bar while waiting, and the status block."""

from __future__ import annotations

import sys

import click

from storage.core.settings import Settings
from storage.core.views import JobProgress


def wait_for(settings: Settings, job_id: str, *, quiet: bool = False, timeout: float | None = None) -> JobProgress:
    """Wait for a job with a tqdm progress bar on stderr (``service.wait_job``)."""
    from tqdm import tqdm

    from producer.service import job_status, wait_job

    with tqdm(total=job_status(settings, job_id)["total"], unit="doc", disable=quiet, file=sys.stderr) as bar:

        def show(status: JobProgress) -> None:
            bar.n = status["done"] + status["failed"] + status["cancelled"]
            waiting = f" waiting for {status['waiting_for']}" if status.get("waiting_for") else ""
            bar.set_postfix_str(f"{status['state']} {status['chars_per_second']:.0f} chars/s{waiting}")
            bar.refresh()

        return wait_job(settings, job_id, timeout=timeout, on_status=show)


def print_status(status: JobProgress) -> None:
    s = status
    eta = "-" if s["eta_seconds"] is None else f"{s['eta_seconds']:.0f} s"
    lines = [
        f"job        {s['job_id']}  ({s.get('name') or '-'})",
        f"state      {s['state']}",
        f"documents  total {s['total']}  done {s['done']}  failed {s['failed']}  pending {s['pending']}"
        f"  processing {s['processing']}  cancelled {s['cancelled']}"
        + (f"  reused {s['reused']}" if s.get("incremental") else "")
        + ("  PAUSED (shiti resume)" if s.get("paused") else ""),
        f"chars      {s['chars_done']:,} / {s['chars_total']:,}",
        f"speed      {s['docs_per_second']:.1f} docs/s  {s['chars_per_second']:,.0f} chars/s  ETA {eta}",
        f"times      submitted {s['submitted_at']}  started {s['started_at'] or '-'}"
        f"  finished {s['finished_at'] or '-'}",
        f"model      {s['model'] or '-'}  sha256 {(s['model_hash'] or '-')[:16]}  fold {s['fold'] or 'off'}  "
        f"dict {s['dictionary'] or '-'}  "
        f"priority {s['priority']}"
        + (f"  rerun of {s['rerun_of']}" if s["rerun_of"] else "")
        + (f"  corrections of {s['gold_of']}" if s.get("gold_of") else ""),
    ]
    if s["workers"] is not None and s["state"] in ("submitted", "running", "cancelling"):
        lines.append(f"workers    {s['workers']} live" + (f"; waiting for {s['waiting_for']}" if s["waiting_for"] else ""))
    if s.get("error"):
        lines.append(f"error      {s['error']}")
    if s["notify"]:
        n = s["notify"]
        lines.append(f"webhook    {n['url']}  {n['state']}, {n['attempts']} attempts"
                     + (f", last error: {n['last_error']}" if n["last_error"] else ""))
    for f in s["failures"][:5]:
        lines.append(f"failure    {f['doc_id']}: {f['reason']}: {f['error']}")
    click.echo("\n".join(lines))
