"""What a re-submit costs with ``--incremental``: a corpus tagged on night 1, the same corpus on
night 2 with 10 % of its documents edited and 5 % added, submitted with ``--incremental`` and,
for comparison, without (a fresh run). One real worker, embedded Redis, SQLite; the shipped model.

Prints wall time (submit -> job terminal) and CPU of the whole pipeline for each night, the ratio
incremental / first run, how many documents were reused, and whether the incremental job's entities
equal the fresh run's, document by document.

    python -W ignore bench/incremental.py [--fraction 0.5] [--edited 0.10] [--added 0.05]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import build_corpus, msra_sentences, pipeline, table, write_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraction", type=float, default=0.5, help="of MSRA test (and its long documents)")
    ap.add_argument("--edited", type=float, default=0.10)
    ap.add_argument("--added", type=float, default=0.05)
    ap.add_argument("--model", default=str(ROOT / "models" / "shiti-zh-small"))
    args = ap.parse_args()

    night1 = build_corpus(fraction=args.fraction, long_docs=12)
    rng = random.Random(7)
    night2 = [dict(d) for d in night1]
    for d in rng.sample(night2, int(len(night2) * args.edited)):
        d["text"] = d["text"] + "新华社记者报道。"
    extra = msra_sentences()[len(night1):]
    night2 += [{"id": f"new{i}", "text": t} for i, t in enumerate(extra[: int(len(night1) * args.added)])]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        c1, c2 = write_jsonl(night1, root / "night1.jsonl"), write_jsonl(night2, root / "night2.jsonl")
        with pipeline(args.model, root) as p:
            from producer.service import export_entities

            first = p.submit_and_wait(c1)
            inc = p.submit_and_wait(c2, "--incremental")
            fresh = p.submit_and_wait(c2)

            def rows(job: str) -> dict[str, list]:
                return {r["doc_id"]: r["entities"] for r in export_entities(p.settings, job)}

            same = rows(inc["status"]["job_id"]) == rows(fresh["status"]["job_id"])
    chars1 = sum(len(d["text"]) for d in night1)
    print(f"night 1: {len(night1):,} documents, {chars1:,} characters; night 2: {len(night2):,} documents "
          f"({args.edited:.0%} edited, {args.added:.0%} added); 1 worker, 1 thread, SQLite")
    def row(name: str, r: dict) -> list:
        return [name, f"{r['wall']:.1f}", f"{r['submit_cmd']:.1f}", f"{r['cpu']:.1f}",
                f"{r['cpu_parts']['worker children']:.1f}", r["status"]["reused"],
                f"{r['wall'] / first['wall']:.2f}", f"{r['cpu'] / first['cpu']:.2f}"]

    print(table(["run", "wall s", "submit cmd s", "pipeline CPU s", "tagging CPU s", "reused", "vs night 1 (wall)",
                 "vs night 1 (CPU)"],
                [row("night 1 (fresh)", first), row("night 2 --incremental", inc), row("night 2 (fresh)", fresh)]))
    changed = {d["id"] for d in night2} - {d["id"] for d in night1} | {
        a["id"] for a, b in zip(night2, night1) if a["text"] != b["text"]}
    share = sum(len(d["text"]) for d in night2 if d["id"] in changed) / sum(len(d["text"]) for d in night2)
    print(f"characters in edited or new documents: {share:.1%} of night 2")
    print(f"incremental entities equal the fresh run's: {same}")


if __name__ == "__main__":
    main()
