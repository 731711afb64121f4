"""The architecture as tests: the import contracts in pyproject.toml ([tool.importlinter]: the layers, config as
the ground floor, evaluate/export/serve/report free of training internals) hold, and no module imports itself
back through others. docs/en/architecture.md explains the layers; a forbidden import fails here, naming the chain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import one another in a ring (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            ring = []
            while (member := stack.pop()) != module:
                ring.append(member)
            if ring:
                cycles.append(sorted([module, *ring]))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_back() -> None:
    assert import_cycles(grimp.build_graph("open_autoglm")) == []


def test_the_cycle_finder_finds_a_planted_ring(tmp_path: Path) -> None:
    package = tmp_path / "ringpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from ringpkg import b\n")
    (package / "b.py").write_text("def f():\n    from ringpkg import c\n")  # a function-level import counts
    (package / "c.py").write_text("import ringpkg.a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        cycles = import_cycles(grimp.build_graph("ringpkg"))
    finally:
        sys.path.remove(str(tmp_path))
    assert cycles == [["ringpkg.a", "ringpkg.b", "ringpkg.c"]]
