"""``shiti demo``: embedded redis + one worker, tag the bundled news sample, show results, clean up."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from storage.processes.launch import WorkerProcess, start_worker
from storage.catalog import resolve
from storage.core.settings import Settings
from storage.core.views import SpanView

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "news.jsonl"
# Bold red, green, blue, magenta, cyan, yellow: a label's colour is its place among the model's labels.
PALETTE = ("\033[1;31m", "\033[1;32m", "\033[1;34m", "\033[1;35m", "\033[1;36m", "\033[1;33m")
RESET = "\033[0m"


def colours(labels: list[str]) -> dict[str, str]:
    """An ANSI colour per entity label, in the model's order."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def highlight(text: str, entities: list[SpanView], palette: dict[str, str]) -> str:
    """``text`` with each entity wrapped in its label's ANSI colour."""
    out, pos = [], 0
    for e in sorted(entities, key=lambda e: e["start"]):
        out += [text[pos:e["start"]], palette.get(e["label"], ""), text[e["start"]:e["end"]], RESET]
        pos = e["end"]
    out.append(text[pos:])
    return "".join(out)


def run_demo(settings: Settings, *, limit: int | None = None) -> None:
    """Run the whole flow on ``producer/samples/news.jsonl`` and stop everything it started."""
    from producer.cli.console import print_status, wait_for
    from producer.service import get_document, submit_corpus, top_entities
    from storage.sql.db import upgrade_schema
    from storage.broker.redis_server import RedisServer, start_redis, stop_redis

    # An unknown or broken model stops here, with the known ones listed; its labels are the types shown.
    labels = list(resolve(settings).labels)
    palette = colours(labels)
    docs = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    if limit:
        docs = docs[:limit]
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    before, after = upgrade_schema(settings)  # the demo's database may be from an older release
    if before not in (None, after):
        click.echo(f"database schema upgraded: {before} -> {after}")
    server: RedisServer | None = None
    worker: WorkerProcess | None = None
    t0 = time.monotonic()
    try:
        if not settings.redis_url:
            server = start_redis(data_dir / "demo-redis")
            settings = settings.replace(redis_url=server.url)
            click.echo(f"redis    {server.url} (pid {server.pid})")
        worker = start_worker(settings, log=data_dir / "demo-worker.log", hostname=f"demo-{os.getpid()}@%h")
        click.echo(f"worker   pid {worker.pid}, model {settings.model} (log {data_dir / 'demo-worker.log'})")
        result = submit_corpus(settings, docs, name="demo: news sample")
        click.echo(f"job      {result.job_id}: {result.documents} documents")
        status = wait_for(settings, result.job_id, timeout=3600)
        click.echo()
        print_status(status)
        click.echo("\ntop entities")
        for label in labels:
            top = top_entities(settings, result.job_id, label=label, limit=8)
            shown = "  ".join(f"{palette[label]}{t['text']}{RESET}×{t['count']}" for t in top)
            click.echo(f"  {label}  {shown}")
        longest = max(docs, key=lambda d: len(d["text"]))
        for doc in [docs[0], docs[1], longest]:
            d = get_document(settings, result.job_id, str(doc["id"]))
            text, ents = d["text"], d["entities"]
            if len(text) > 400:  # show the tail of the long report: its entities sit near the end
                cut = len(text) - 300
                ents = [{**e, "start": e["start"] - cut, "end": e["end"] - cut} for e in ents if e["start"] >= cut]
                text = text[cut:]
                click.echo(f"\n[{d['doc_id']}] … last 300 of {len(d['text'])} characters, {len(d['entities'])} entities")
            else:
                click.echo(f"\n[{d['doc_id']}] {len(ents)} entities")
            click.echo(highlight(text, ents, palette))
        click.echo(f"\ndemo finished in {time.monotonic() - t0:.1f} s "
                   f"(query it: shiti entities {result.job_id} --top 10)")
    finally:
        if worker is not None:
            worker.stop()
        if server is not None:
            stop_redis(server)
