"""Does a document's output depend on what it is tagged with? Counts documents whose entities
(offsets, labels and scores) differ between batchings, in process and through the pipeline.

In process, the corpus (MSRA test sentences as documents plus long 2k-20k-char documents made by
concatenating them) is tagged (a) in one ``annotate`` call, (b) shuffled, in chunks of odd sizes
(37, 3, 101, 1, 17, repeating), (c) one document per call. Through the pipeline (embedded Redis, one
real worker, SQLite), the same corpus is submitted with ``SHITI_BATCH_DOCS`` 1,024 and 37 and the
exported entity rows compared. Goal: 0 documents differ anywhere.

Usage: ``python -W ignore bench/determinism.py [--model DIR] [--fraction 1.0] [--no-pipeline]``
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

from _common import base_parser, build_corpus, pipeline, resolve_model, shiti, write_jsonl

CHUNKS = (37, 3, 101, 1, 17)


def _key(entities: list) -> list[tuple]:
    return [(e.start, e.end, e.label, e.text, round(e.score, 6)) for e in entities]


def in_process(model: str, texts: list[str], threads: int) -> dict[str, int]:
    """Documents whose entities differ from the one-call run, per batching."""
    from worker.tagger.loading import load_tagger

    tagger = load_tagger(model, threads=threads)
    one_call = [_key(x) for x in tagger.annotate(texts)]
    order = list(range(len(texts)))
    random.Random(7).shuffle(order)
    chunked: dict[int, list] = {}
    pos, k = 0, 0
    while pos < len(order):
        part = order[pos : pos + CHUNKS[k % len(CHUNKS)]]
        for i, ents in zip(part, tagger.annotate([texts[i] for i in part])):
            chunked[i] = _key(ents)
        pos, k = pos + len(part), k + 1
    alone = [_key(tagger.annotate([t])[0]) for t in texts]
    return {"shuffled odd chunks": sum(chunked[i] != one_call[i] for i in range(len(texts))),
            "one per call": sum(a != b for a, b in zip(alone, one_call)),
            "entities": sum(map(len, one_call))}


def through_pipeline(model: str, corpus: Path, root: Path, threads: int) -> tuple[int, int]:
    """(documents whose exported entities differ between batch_docs 1,024 and 37, entities)."""
    exports = []
    for batch_docs in (1024, 37):
        with pipeline(model, root, threads=threads, batch_docs=batch_docs) as pipe:
            job = pipe.submit_and_wait(corpus)["status"]["job_id"]
            out = shiti("export", job, env=pipe.env).stdout
            exports.append({r["doc_id"]: [(e["start"], e["end"], e["label"], round(e["score"], 6))
                                      for e in r["entities"]] for r in map(json.loads, out.splitlines())})
    a, b = exports
    assert a.keys() == b.keys()
    return sum(a[d] != b[d] for d in a), sum(map(len, a.values()))


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--no-pipeline", action="store_true")
    p.add_argument("--fraction", type=float, default=1.0, help="share of the MSRA test sentences")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    model, desc = resolve_model(args.model)
    docs = build_corpus(fraction=args.fraction)
    texts = [d["text"] for d in docs]
    print(f"determinism: model {desc}, {len(docs):,} documents, {sum(map(len, texts)):,} chars")
    got = in_process(model, texts, args.threads)
    for name in ("shuffled odd chunks", "one per call"):
        print(f"  in process, {name:<20} vs one call: {got[name]} documents differ ({got['entities']:,} entities)")
    if not args.no_pipeline:
        root = Path(tempfile.mkdtemp(prefix="shiti-det-"))
        try:
            corpus = write_jsonl(docs, root / "corpus.jsonl")
            diff, n = through_pipeline(model, corpus, root, args.threads)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"  pipeline, SHITI_BATCH_DOCS 1,024 vs 37: {diff} documents differ ({n:,} entities)")


if __name__ == "__main__":
    main()
