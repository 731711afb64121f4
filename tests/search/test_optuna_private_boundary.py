"""Optuna's private API is reached from search/optuna_private.py only, so an Optuna upgrade breaks one module.

Optuna's private names are read from its installed source (every `_name` it defines: modules, functions,
classes, methods, attributes); a module of open_autoglm that imports one, imports from a private Optuna module,
or reads `something._name` for one of them (other than on `self` / `cls`) fails here, naming file and line.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import optuna

SRC = Path(__file__).resolve().parents[2] / "src" / "open_autoglm"
WRAPPER = SRC / "search" / "optuna_private.py"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@cache
def optuna_private_names() -> frozenset[str]:
    """Every private name the installed Optuna defines."""
    root = Path(optuna.__file__).parent
    names: set[str] = set()
    for path in root.rglob("*.py"):
        names.update(part for part in path.relative_to(root).with_suffix("").parts if is_private(part))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined = node.name
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined = node.attr  # self._storage = ...
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined = node.id  # _logger = ... at module level
            else:
                continue
            if is_private(defined):
                names.add(defined)
    return frozenset(names)


def on_self(node: ast.Attribute) -> bool:
    """`self._x` / `cls._x`: a class's own attribute, whatever Optuna calls its own."""
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")


def reaches_into_optuna(source: str) -> list[int]:
    """Lines where `source` touches a private Optuna name."""
    private = optuna_private_names()
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "optuna":
            parts = (node.module or "").split(".")
            if any(map(is_private, parts)) or any(is_private(alias.name) for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "optuna" and any(map(is_private, parts)):
                    lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in private and not on_self(node):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_only_the_wrapper_touches_optunas_private_api() -> None:
    offenders = {
        str(path.relative_to(SRC)): found
        for path in sorted(SRC.rglob("*.py"))
        if path != WRAPPER and (found := reaches_into_optuna(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"Optuna private names outside {WRAPPER.name} (file: lines): {offenders}"


def test_the_wrapper_is_where_the_private_calls_are() -> None:
    assert reaches_into_optuna(WRAPPER.read_text(encoding="utf-8"))  # else this test checks nothing


def test_the_check_finds_planted_private_uses() -> None:
    source = "\n".join(
        [
            "import optuna",
            "from optuna.storages._heartbeat import BaseHeartbeat",  # 2: a private module
            "from optuna.study import _multi_objective",  # 3: a private name
            "import optuna.study._multi_objective",  # 4
            "storage = study._storage",  # 5: a private attribute Optuna sets
            "trial_id = trial._trial_id",  # 6
            "self._storage = storage",  # our own attribute
            "study.best_trial",  # public
            "x._our_own_name_optuna_never_defines",  # not Optuna's
        ]
    )
    assert reaches_into_optuna(source) == [2, 3, 4, 5, 6]
