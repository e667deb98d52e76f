"""Modules, lines, import cycles and back-arrows of a shiti checkout (the house issue's numbers).

Usage: ``python scripts/architecture_report.py [CHECKOUT]`` (default: this one). In-function
imports count (grimp reads them all); a back-arrow is an import from storage up to producer or
worker, or between producer and worker.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "producer", "worker")


def main() -> None:
    sys.path.insert(0, str(HERE))
    from tests.test_architecture import _cycles  # the same cycle finder as the test

    for name in [m for m in sys.modules if m.split(".")[0] in (*PACKAGES, "tests")]:
        del sys.modules[name]
    sys.path.remove(str(HERE))
    root = Path(sys.argv[1] if len(sys.argv) > 1 else HERE).resolve()
    sys.path.insert(0, str(root))
    import grimp

    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in PACKAGES}
             for m in graph.modules if m.split(".")[0] in PACKAGES}
    edges = {m: {i for i in imps if not m.startswith(i + ".")} for m, imps in edges.items()}
    back = sorted((m, i) for m, imps in edges.items() for i in imps
                  if (m.split(".")[0], i.split(".")[0]) in {("worker", "producer"), ("producer", "worker"),
                                                            ("storage", "producer"), ("storage", "worker")})
    files = subprocess.run(["git", "ls-files", *(f"{p}/*.py" for p in PACKAGES)], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    lines = [len((root / f).read_text(encoding="utf-8").splitlines()) for f in files]
    print(f"{root}: {len(files)} files, {sum(lines):,} lines, median {statistics.median(lines):.0f}, "
          f"max {max(lines)}")
    print(f"import cycles ({len(_cycles(edges))}): {_cycles(edges)}")
    print(f"back-arrows ({len(back)}): {back}")


if __name__ == "__main__":
    main()
