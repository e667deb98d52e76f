"""Write ``storage/core/data/t2s_fold.tsv``: the one-to-one Traditional -> Simplified character fold
the tagger applies before the model (``storage/core/fold.py``).

Source: OpenCC's ``t2s`` conversion (the pinned ``opencc`` package) asked one character at a time,
over every CJK ideograph block; a mapping is kept only when it gives exactly one code point (so
offsets never move). Left out: characters that Simplified news text itself uses (MSRA and People's
Daily training text, where the fold would change correct Simplified input), passed as ``--keep``.

    python scripts/build_fold_table.py [--check]

``--check`` exits 1 when the shipped table differs from what this script writes (the test suite
runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "storage" / "core" / "data" / "t2s_fold.tsv"
# The CJK Unified Ideographs blocks and their extensions A-B, and the compatibility ideographs.
BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF), (0x2F800, 0x2FA1F))
# Traditional for OpenCC, but ordinary Simplified too (乾隆, 哪吒, 捱打): news text uses them as they are.
KEEP = "乾吒捱"


def build(keep: str = KEEP) -> str:
    """The table's text: a header naming its source, then ``TRADITIONAL<TAB>SIMPLIFIED`` lines."""
    import opencc

    convert = opencc.OpenCC("t2s").convert
    rows = []
    for first, last in BLOCKS:
        for cp in range(first, last + 1):
            ch = chr(cp)
            out = convert(ch)
            if out != ch and len(out) == 1 and ch not in keep:
                rows.append(f"{ch}\t{out}")
    version = getattr(opencc, "__version__", "?")
    head = (f"# Traditional -> Simplified, one code point for one: OpenCC {version} t2s per character, "
            f"less {keep} (scripts/build_fold_table.py)\n")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped table instead of writing it")
    args = ap.parse_args()
    text = build()
    if args.check:
        if TABLE.read_text(encoding="utf-8") != text:
            sys.exit(f"{TABLE} differs from what scripts/build_fold_table.py writes: run it")
        print(f"{TABLE.name}: up to date ({text.count(chr(10)) - 1} characters)")
        return
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE} ({text.count(chr(10)) - 1} characters)")


if __name__ == "__main__":
    main()
