"""Submit, dispatch and query at scale, on SQLite and PostgreSQL (no model involved).

For each database:

1. **submit**: ``shiti submit`` of a synthetic JSONL job (``--docs``, default 1,000,000 short
   texts) as a subprocess: documents/s into SQL and the producer's peak RSS (``wait4``).
2. **dispatch**: the dispatcher (``storage.broker.dispatch.dispatch``) run over the whole job while a
   stand-in consumer pops every published message at once (infinitely fast workers): ids/s
   handed to Redis and Redis ``used_memory`` sampled after every call (goal < 100 MB).
3. **status**: with 40 % of the documents done and 64 processing, ``job_status`` in-process
   (what ``shiti status``/the API run; goal < 50 ms) and the ``shiti status`` command wall time
   (includes starting Python).
4. **entities** (``--entities``, default 10,000,000 rows, bulk-loaded with executemany/COPY,
   secondary indexes built after the load): ``find_entities`` page latency by type, by text
   (frequent and rare), type+text and document, first page and following pages through the
   keyset cursor (goal < 100 ms per page). ``--explain`` prints the query plans.
5. **export**: ``shiti export JOB`` as a subprocess for ``--export-seconds``: entities/s streamed
   (goal >= 100k/s) and its RSS sampled along the way (goal: flat).
6. **corpus view**: ``groups.build`` over the job's entities and the view's queries
   (``bench/corpus_view.py``), its counts checked against a direct count.
7. **incremental look-up**: the job's documents made ``done`` with a recipe, then
   ``--incremental-docs`` of the same texts stored as a new incremental job: the donor look-up
   alone (``repo.find_donors``, goal >= 100k docs/s) and ``repo.reuse_done`` end to end (look-up
   plus the copy of each reused document's entities).

Usage: ``python bench/scale_sql.py [--docs 1000000] [--entities 10000000] [--db sqlite,postgres]``
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import REPO, base_parser, cpu_note, embedded_redis, median, sample_sentences, rss_kib, table
from corpus_view import draw_names, load_entity_rows

PAGE = 100


# ----------------------------------------------------------------------------------------- corpus


def write_corpus(path: Path, n: int) -> int:
    """``n`` short texts (8-60 chars cut from MSRA sentences), streamed to JSONL; returns chars."""
    sents = "".join(sample_sentences())
    rng = random.Random(1)
    chars = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            k = rng.randint(8, 60)
            at = rng.randrange(len(sents) - k)
            text = sents[at:at + k]
            chars += k
            fh.write(json.dumps({"id": f"d{i}", "text": text}, ensure_ascii=False))
            fh.write("\n")
    return chars


# --------------------------------------------------------------------------------------- backends


@contextmanager
def backend(name: str, root: Path) -> Iterator[str]:
    """The database URL for ``name`` ("" = the default SQLite file in the data dir)."""
    if name == "sqlite":
        yield ""
        return
    sys.path.insert(0, str(REPO))
    from tests.helpers.postgres import pg_bindir, postgres_cluster

    if pg_bindir() is None:
        raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
    with postgres_cluster() as url:
        yield url


# ----------------------------------------------------------------------------------------- phases


def submit(corpus: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``shiti submit`` and return wall time, peak RSS (KiB) and the job id."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "producer.cli.main", "submit", str(corpus), "--json"], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"submit failed: {err[-2000:]}")
    return {"wall": wall, "maxrss_kib": usage.ru_maxrss, "job_id": json.loads(out.strip().splitlines()[-1])["job_id"]}


def dispatch_all(settings: Any, job_id: str, *, max_seconds: float) -> dict[str, float]:
    """Dispatch the job to the end (or ``max_seconds``) with an instant consumer."""
    import redis

    from storage.broker.dispatch import dispatch
    from storage.broker.queue import queue_for, queue_keys

    r = redis.Redis.from_url(settings.redis_url)
    peak = r.info("memory")["used_memory"]
    before = peak
    batches = 0
    msgs_bytes = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_seconds:
        for key in queue_keys(queue_for(settings, settings.model_name)):
            while (m := r.lpop(key)) is not None:  # the "workers" take everything
                msgs_bytes = max(msgs_bytes, len(m))
        n = dispatch(settings, job_id=job_id)
        peak = max(peak, r.info("memory")["used_memory"])
        if n == 0:
            break
        batches += n
    wall = time.perf_counter() - t0
    return {"wall": wall, "batches": batches, "peak_mb": peak / 2**20, "before_mb": before / 2**20,
            "msg_bytes": msgs_bytes, "docs": batches * settings.batch_docs}


def make_midway(db: Any, job_id: str) -> None:
    """40 % of the job done, 64 documents processing (a job caught mid-run), counters recounted."""
    from sqlalchemy import func, select, update

    from storage.sql import repo
    from storage.sql.schema import document

    with db.write() as conn:
        lo, hi = conn.execute(select(func.min(document.c.id), func.max(document.c.id))
                              .where(document.c.job_id == job_id)).one()
        cut = lo + int((hi - lo) * 0.4)
        conn.execute(update(document).where(document.c.job_id == job_id, document.c.id < cut)
                     .values(status="done", lease_expires_at=None))
        conn.execute(update(document).where(document.c.job_id == job_id, document.c.id >= cut,
                                            document.c.id < cut + 64)
                     .values(status="processing", lease_token="x", lease_expires_at=time.time() + 900))
    repo.recount(db, job_id)
    with db.write() as conn:
        conn.execute(update(__import__("storage.sql.schema", fromlist=["job"]).job)
                     .values(status="running", started_at=time.time() - 600))


def time_calls(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


# --------------------------------------------------------------------------------------- entities


def entity_vocab(rng: random.Random) -> list[tuple[str, str]]:
    """~60k distinct (label, text) pairs; drawn Zipf-like so a few are very frequent."""
    return draw_names(rng)


def load_entities(db: Any, job_id: str, n: int) -> tuple[float, list[tuple[str, str]]]:
    """Bulk-load ``n`` entity rows spread over the job's documents; returns (seconds, vocab)."""
    from sqlalchemy import func, select

    from storage.sql.schema import document

    rng = random.Random(2)
    vocab = entity_vocab(rng)
    weights = [1 / (i + 1) for i in range(len(vocab))]
    with db.read() as conn:
        lo, hi = conn.execute(select(func.min(document.c.id), func.max(document.c.id))
                              .where(document.c.job_id == job_id)).one()
    ndocs = hi - lo + 1
    per_doc = max(1, -(-n // ndocs))
    t0 = time.perf_counter()

    def rows() -> Iterator[tuple[Any, ...]]:
        written = 0
        while written < n:
            m = min(200_000, n - written)
            for j, (lab, text) in enumerate(rng.choices(vocab, cum_weights=_cum(weights), k=m)):
                k = written + j
                doc, slot = lo + k // per_doc, k % per_doc
                yield (job_id, doc, slot * 8, slot * 8 + len(text), lab, text, 0.9)
            written += m
    load_entity_rows(db, ("job_id", "document_id", "start", '"end"', "label", "text", "score"), rows())
    return time.perf_counter() - t0, vocab


_CUM: dict[int, list[float]] = {}


def _cum(weights: list[float]) -> list[float]:
    key = id(weights)
    if key not in _CUM:
        acc, out = 0.0, []
        for w in weights:
            acc += w
            out.append(acc)
        _CUM[key] = out
    return _CUM[key]


def entity_queries(settings: Any, job_id: str, vocab: list[tuple[str, str]], *, ndocs: int, pages: int,
                   explain: bool) -> list[list[Any]]:
    """Page latencies (ms) of ``find_entities`` for each filter: first page, median of the
    following ``pages`` pages (keyset cursor), and the worst page."""
    from producer.service import find_entities

    frequent_label, frequent = vocab[0]  # Zipf rank 1: ~9 % of the rows
    _, rare = vocab[1000]  # rank 1,000: ~0.01 % of the rows
    cases = [
        ("type=PER", {"label": "PER"}),
        ("type=ORG", {"label": "ORG"}),
        (f"text={frequent} (frequent)", {"text": frequent}),
        (f"text={rare} (rare)", {"text": rare}),
        (f"type+text={frequent_label}/{frequent}", {"label": frequent_label, "text": frequent}),
        (f"doc=d{ndocs // 2}", {"doc": f"d{ndocs // 2}"}),
        ("no filter", {}),
    ]
    rows = []
    for name, flt in cases:
        times, total, cursor = [], 0, None
        for _ in range(pages + 1):
            t0 = time.perf_counter()
            page = find_entities(settings, job_id, cursor=cursor, limit=PAGE, **flt)
            times.append((time.perf_counter() - t0) * 1000)
            total += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        rows.append([name, times[0], median(times[1:]) if len(times) > 1 else float("nan"), max(times), total])
        if explain:
            print_plan(settings, job_id, flt)
    return rows


def print_plan(settings: Any, job_id: str, flt: dict[str, str]) -> None:
    """EXPLAIN (QUERY PLAN) of the first page of ``find_entities`` with these filters."""
    from sqlalchemy import select

    from storage.sql.db import get_database
    from storage.sql.schema import document, entity

    db = get_database(settings)
    stmt = (select(entity.c.id, document.c.ext_id, entity.c.start, entity.c.end, entity.c.label, entity.c.text,
                   entity.c.score)
            .join(document, document.c.id == entity.c.document_id)
            .where(entity.c.job_id == job_id).order_by(entity.c.id).limit(PAGE + 1))
    if "label" in flt:
        stmt = stmt.where(entity.c.label == flt["label"])
    if "text" in flt:
        stmt = stmt.where(entity.c.text == flt["text"])
    if "doc" in flt:
        stmt = stmt.where(document.c.job_id == job_id, document.c.ext_id == flt["doc"])
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN ANALYZE "
    with db.read() as conn:
        plan = [" | ".join(str(c) for c in r) for r in conn.exec_driver_sql(prefix + sql)]
    print(f"  plan [{db.dialect}] {flt or 'no filter'}:\n    " + "\n    ".join(plan))


def export_rate(env: dict[str, str], job_id: str, *, seconds: float) -> dict[str, Any]:
    """``shiti export JOB`` for ``seconds``: documents and entities/s read from its stdout, and
    its RSS (MiB) sampled every 2 s."""
    proc = subprocess.Popen([sys.executable, "-m", "producer.cli.main", "export", job_id], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    docs = ents = 0
    rss: list[float] = []
    t0 = time.perf_counter()
    next_sample = t0 + 2
    for line in proc.stdout:
        docs += 1
        ents += line.count(b'"label"')
        now = time.perf_counter()
        if now >= next_sample:
            rss.append(rss_kib(proc.pid) / 1024)
            next_sample = now + 2
        if now - t0 >= seconds:
            break
    wall = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    return {"docs": docs, "entities": ents, "wall": wall, "entities_per_s": ents / wall, "rss_mib": rss}


def incremental_lookup(settings: Any, db: Any, job_id: str, corpus: Path, n: int) -> dict[str, Any]:
    """The first job done with a recipe; ``n`` of its texts stored again as an incremental job;
    the donor look-up timed alone, then reuse end to end."""
    from sqlalchemy import select, update

    from producer.corpus import read_corpus
    from producer.service import document_row, job_options, job_recipe
    from storage.sql import repo
    from storage.sql.schema import document

    options = job_options(settings, incremental=True)
    recipe = job_recipe(settings, options)
    t0 = time.perf_counter()
    with db.write() as conn:
        conn.execute(update(document).where(document.c.job_id == job_id)
                     .values(status="done", recipe=recipe, lease_token=None, lease_expires_at=None))
    mark_s = time.perf_counter() - t0
    new_job, _ = repo.create_job(db, name="incremental bench", model=options.model, model_hash=options.model_hash,
                                 incremental=True)
    chunk: list[dict[str, Any]] = []
    for i, rec in enumerate(read_corpus(corpus, max_chars=settings.max_chars)):
        if i >= n:
            break
        chunk.append(document_row(rec, max_chars=settings.max_chars))
        if len(chunk) >= 5000:
            repo.insert_documents(db, new_job, chunk)
            chunk = []
    repo.insert_documents(db, new_job, chunk)
    repo.analyze_documents(db)
    with db.read() as conn:
        hashes = [r[0] for r in conn.execute(select(document.c.text_hash).where(document.c.job_id == new_job)
                                             .order_by(document.c.id))]
    t0 = time.perf_counter()
    found = 0
    with db.read() as conn:
        for i in range(0, len(hashes), 500):
            found += len(repo.find_donors(conn, new_job, recipe, sorted(set(hashes[i:i + 500]))))
    lookup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reused = repo.reuse_done(db, new_job, recipe)
    reuse_s = time.perf_counter() - t0
    return {"mark_s": mark_s, "docs": len(hashes), "donors": found, "lookup_docs_per_s": len(hashes) / lookup_s,
            "reused": reused, "reuse_docs_per_s": reused / reuse_s, "reuse_s": reuse_s}


def corpus_view(db: Any, job_id: str) -> dict[str, Any]:
    """The corpus view built over the job's entities, checked, and its queries timed."""
    import corpus_view as cv

    from storage.sql import groups

    t0 = time.perf_counter()
    built = groups.build(db, job_id)
    build_s = time.perf_counter() - t0
    cv.check(db, job_id)
    return {"build_s": build_s, **built, "queries": cv.queries(db, job_id)}


# ------------------------------------------------------------------------------------------- main


def run_backend(name: str, *, corpus: Path, ndocs: int, nents: int, args: Any, root: Path) -> dict[str, Any]:
    from storage.sql.db import dispose_all, get_database
    from storage.core.settings import Settings

    data = root / f"data-{name}"
    out: dict[str, Any] = {"db": name}
    with backend(name, root) as url, embedded_redis(data) as redis_server:
        settings = Settings(data_dir=data, database_url=url, redis_url=redis_server.url)
        env = {**os.environ, "SHITI_DATA_DIR": str(data), "SHITI_DATABASE_URL": url}
        env.pop("SHITI_REDIS_URL", None)
        print(f"[{name}] submitting {ndocs:,} documents ...", flush=True)
        sub = submit(corpus, env)
        out.update(submit_s=sub["wall"], docs_per_s=ndocs / sub["wall"], producer_mib=sub["maxrss_kib"] / 1024)
        job_id = sub["job_id"]
        print(f"[{name}] dispatching ...", flush=True)
        disp = dispatch_all(settings, job_id, max_seconds=args.dispatch_seconds)
        out.update(dispatch_docs_per_s=disp["docs"] / disp["wall"], redis_peak_mb=disp["peak_mb"],
                   dispatched=disp["docs"], msg_bytes=disp["msg_bytes"])
        db = get_database(settings)
        make_midway(db, job_id)
        from producer.service import job_status

        job_status(settings, job_id)  # warm the engine / page cache
        st = time_calls(lambda: job_status(settings, job_id), 50)
        out.update(status_ms=median(st), status_p95_ms=sorted(st)[int(len(st) * 0.95) - 1])
        cli = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "producer.cli.main", "status", job_id, "--json"], env=env, cwd=REPO,
                           check=True, capture_output=True)
            cli.append((time.perf_counter() - t0) * 1000)
        out["status_cli_ms"] = median(cli)
        if nents:
            print(f"[{name}] loading {nents:,} entity rows ...", flush=True)
            load_s, vocab = load_entities(db, job_id, nents)
            out["entity_load_s"] = load_s
            out["queries"] = entity_queries(settings, job_id, vocab, ndocs=ndocs, pages=args.pages, explain=args.explain)
            if args.export_seconds:
                print(f"[{name}] exporting for {args.export_seconds:g} s ...", flush=True)
                out["export"] = export_rate(env, job_id, seconds=args.export_seconds)
            if args.corpus_view:
                print(f"[{name}] building the corpus view ...", flush=True)
                out["corpus_view"] = corpus_view(db, job_id)
                print(f"[{name}] corpus view built in {out['corpus_view']['build_s']:.0f} s", flush=True)
        if args.incremental_docs:
            print(f"[{name}] incremental look-up of {args.incremental_docs:,} documents ...", flush=True)
            out["incremental"] = incremental_lookup(settings, db, job_id, corpus, min(args.incremental_docs, ndocs))
        dispose_all()
    return out


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--entities", type=int, default=10_000_000)
    p.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--pages", type=int, default=20, help="pages followed through the cursor per query")
    p.add_argument("--dispatch-seconds", type=float, default=120.0, help="stop dispatching after this")
    p.add_argument("--explain", action="store_true", help="print the entity query plans")
    p.add_argument("--export-seconds", type=float, default=30.0, help="stream the export this long (0: skip)")
    p.add_argument("--no-corpus-view", dest="corpus_view", action="store_false", help="skip the corpus view")
    p.add_argument("--incremental-docs", type=int, default=200_000,
                   help="documents of the incremental look-up job (0: skip)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shiti-scale-"))
    try:
        corpus = root / "corpus.jsonl"
        chars = write_corpus(corpus, args.docs)
        print(f"corpus: {args.docs:,} docs, {chars:,} chars, {corpus.stat().st_size / 2**20:.0f} MiB JSONL; "
              f"{cpu_note()}", flush=True)
        results = [run_backend(name.strip(), corpus=corpus, ndocs=args.docs, nents=args.entities, args=args, root=root)
                   for name in args.db.split(",") if name.strip()]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"submit / dispatch / status, {args.docs:,}-document job (goals: Redis < 100 MB, status < 50 ms)")
    print(table(["db", "submit docs/s", "submit s", "producer peak MiB", "dispatch ids/s", "dispatched",
                 "Redis peak MB", "status ms (median)", "status ms (p95)", "`shiti status` cmd ms"],
                [[r["db"], r["docs_per_s"], r["submit_s"], r["producer_mib"], r["dispatch_docs_per_s"],
                  r["dispatched"], r["redis_peak_mb"], r["status_ms"], r["status_p95_ms"], r["status_cli_ms"]]
                 for r in results]))
    for r in results:
        if "queries" in r:
            print()
            print(f"entity queries [{r['db']}], {args.entities:,} rows (bulk load + index build "
                  f"{r['entity_load_s']:.0f} s), page = {PAGE} rows, goal < 100 ms per page")
            print(table(["filter", "first page ms", "next pages ms (median)", "worst page ms", "rows seen"],
                        r["queries"]))
        if "export" in r:
            e = r["export"]
            rss = e["rss_mib"]
            print(f"\nexport [{r['db']}] (goal >= 100k entities/s, flat memory): {e['entities']:,} entities of "
                  f"{e['docs']:,} documents in {e['wall']:.0f} s = {e['entities_per_s']:,.0f} entities/s; "
                  f"RSS MiB first/max/last {rss[0] if rss else 0:.0f}/{max(rss or [0]):.0f}/{rss[-1] if rss else 0:.0f}")
        if "corpus_view" in r:
            c = r["corpus_view"]
            print(f"\ncorpus view [{r['db']}]: built in {c['build_s']:.0f} s ({c['groups']:,} groups, {c['forms']:,} "
                  f"forms, {c['pairs']:,} pairs, {c['entities']:,} entities)")
            print(table(["query", "ms (median of 7)"], [[q, f"{ms:.1f}"] for q, ms in c["queries"]]))
        if "incremental" in r:
            i = r["incremental"]
            print(f"\nincremental [{r['db']}] (goal >= 100k docs/s look-up): {i['docs']:,} documents, "
                  f"{i['donors']:,} donors found, look-up {i['lookup_docs_per_s']:,.0f} docs/s; reuse end to end "
                  f"(look-up + entity copy) {i['reuse_docs_per_s']:,.0f} docs/s ({i['reused']:,} in {i['reuse_s']:.0f} s); "
                  f"marking the first job done took {i['mark_s']:.0f} s")


if __name__ == "__main__":
    main()
