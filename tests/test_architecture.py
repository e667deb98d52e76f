"""The house in one direction: no import cycle between shiti's modules (in-function imports
included), and the import contracts of pyproject.toml hold (also run by scripts/test.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "producer", "worker")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_tarjan_finds_a_planted_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in PACKAGES}
             for m in graph.modules if m.split(".")[0] in PACKAGES}
    # A package's __init__ is imported by every submodule (Python imports parents first): not a cycle.
    edges = {m: {i for i in imps if not m.startswith(i + ".")} for m, imps in edges.items()}
    assert _cycles(edges) == []


def test_import_contracts_hold() -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


# ------------------------------------------------------------------ docs/architecture.md matches the code

WATCHED_STDLIB = {"http", "urllib", "socket", "ssl", "subprocess", "signal"}


def _rooms() -> dict[str, tuple[set[str], set[str]]]:
    """The rooms table of docs/architecture.md: module prefix -> (shiti rooms, libraries) it may import."""
    rooms: dict[str, tuple[set[str], set[str]]] = {}
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## Rooms", 1)[1]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue

        def module(path: str) -> str:
            return path.strip("`").removesuffix("/").removesuffix(".py").replace("/", ".")

        shiti = {module(p) for p in cells[2].split(", ") if p.startswith("`")}
        libs = {p.strip() for p in cells[3].split(",") if p.strip() not in ("", "—")}
        rooms[module(cells[0])] = (shiti, libs)
    return rooms


def _room_of(module: str, rooms: dict[str, tuple[set[str], set[str]]]) -> str | None:
    found = [r for r in rooms if module == r or module.startswith(r + ".")]
    return max(found, key=len) if found else None


def test_the_rooms_table_reads() -> None:
    rooms = _rooms()
    assert rooms["storage.sql"] == ({"storage.core"}, {"sqlalchemy", "alembic", "subprocess"})
    assert _room_of("storage.sql.migrations.env", rooms) == "storage.sql"
    assert _room_of("worker.tasks", rooms) == "worker" and _room_of("worker.tagger.merge", rooms) == "worker.tagger"


def test_every_package_is_a_room_of_the_table_and_of_the_readme() -> None:
    rooms = _rooms()
    subpackages = {f"{p}.{d.name}" for p in PACKAGES for d in (REPO / p).iterdir() if (d / "__init__.py").is_file()}
    # A top-level package is a room of its own when it holds modules that are no row themselves.
    roots = {p for p in PACKAGES if any(f.stem != "__init__" and f"{p}.{f.stem}" not in rooms
                                        for f in (REPO / p).glob("*.py"))}
    on_disk = subpackages | roots
    assert on_disk <= set(rooms), f"packages with no row in docs/architecture.md: {sorted(on_disk - set(rooms))}"
    stale = {r for r in rooms if not (REPO / r.replace(".", "/")).is_dir()
             and not (REPO / (r.replace(".", "/") + ".py")).is_file()}
    assert not stale, f"rows of docs/architecture.md with nothing on disk: {sorted(stale)}"
    layout = (REPO / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    for room in rooms:
        path = room.replace(".", "/") + ("/" if (REPO / room.replace(".", "/")).is_dir() else ".py")
        assert f"`{path}`" in layout, f"README's Layout section does not name {path}"


def test_every_room_imports_only_what_its_row_names() -> None:
    rooms = _rooms()
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True, exclude_type_checking_imports=True,
                              cache_dir=None)
    wrong: list[str] = []
    for module in sorted(graph.modules):
        if module.split(".")[0] not in PACKAGES:
            continue
        room = _room_of(module, rooms)
        if room is None and module in PACKAGES:  # the __init__ of a package that is no room itself
            continue
        if room is None:
            wrong.append(f"{module}: in no room of docs/architecture.md")
            continue
        shiti, libs = rooms[room]
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top in PACKAGES:
                other = _room_of(imported, rooms)
                if other != room and other not in shiti:
                    wrong.append(f"{module} -> {imported} ({room} may not import {other})")
            elif top in sys.stdlib_module_names and top not in WATCHED_STDLIB:
                continue
            elif top not in libs:
                wrong.append(f"{module} -> {top} (not in {room}'s libraries)")
    assert not wrong, "\n".join(wrong)


def test_every_doc_a_docstring_cites_is_in_docs() -> None:
    import re

    missing = set()
    for path in [*REPO.glob("storage/**/*.py"), *REPO.glob("producer/**/*.py"), *REPO.glob("worker/**/*.py"),
                 *REPO.glob("tests/**/*.py"), *REPO.glob("bench/*.py")]:
        for name in re.findall(r"\b([\w-]+\.md)\b", path.read_text(encoding="utf-8")):
            if not (REPO / "docs" / name).is_file() and not (REPO / name).is_file() and name != "MODEL_CARD.md":
                missing.add(f"{path.relative_to(REPO)}: {name}")
    assert not missing, sorted(missing)
