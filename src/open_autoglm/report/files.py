"""The files of a run folder read for the report: leniently, and saying what could not be read.

A report is most wanted when something went wrong, so a torn, truncated or other-version file never stops it:
the part it feeds is left out, and `RunFiles.unreadable` keeps, by file, what is wrong with it (a JSON error
with its line, the key whose value has the wrong type), which the report shows at its top.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# What the report reads of each file, by key: a type, a nested shape (an object), or a one-item list (a list of
# that). A value of another type is dropped and named; keys not listed are passed through as they are.
Shape = dict[str, Any]
CONFIG_SHAPE: Shape = {"task": str, "model": {"name": str}, "search": {"storage": str, "objectives": [str]}}
SUMMARY_SHAPE: Shape = {
    "metric": str,
    "task": str,
    "model": str,
    "greater_is_better": bool,
    "best": {"validation": dict, "test": dict, "config": dict, "params": dict, "trial": int},
    "default": {"validation": dict, "trial": int},
    "baseline": {"metrics": dict},
    "compute": dict,
    "resources": dict,
    "versions": dict,
    "trials": dict,
}
EVAL_SHAPE: Shape = {
    "metrics": dict,
    "confidence": dict,
    "per_class": dict,
    "confusion_matrix": {"labels": list, "matrix": [list]},
    "speed": dict,
    "baselines": [{"metrics": dict, "comparison": dict}],
    "regressions": [dict],
    "passed": bool,
}
DATA_SHAPE: Shape = {
    "duplicates": dict,
    "removed": dict,
    "pii": dict,
    "splits": dict,
    "languages": dict,
    "labels": dict,
    "lengths": dict,
}
EXPORT_SHAPE: Shape = {"variants": [dict]}
TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
}


class RunFiles:
    """Reads files under `run_dir`; `unreadable` maps each file it could not (wholly) read to what is wrong."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.unreadable: dict[str, str] = {}

    def note(self, path: Path, problem: str) -> None:
        """Remember a problem of a file (the report names the file relative to the run folder)."""
        name = path.relative_to(self.run_dir).as_posix() if path.is_relative_to(self.run_dir) else str(path)
        add_problem(self.unreadable, name, problem)

    def json(self, path: Path, shape: Shape) -> dict[str, Any] | None:
        """A JSON object checked against `shape`, or None when the file is absent or unreadable."""
        if not path.is_file():
            return None
        text = self._text(path)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            self.note(
                path,
                f"not valid JSON at line {err.lineno} column {err.colno}: {err.msg} (torn or truncated?)",
            )
            return None
        return self.checked(path, data, shape)

    def yaml(self, path: Path, shape: Shape) -> dict[str, Any]:
        """A YAML mapping checked against `shape`; {} when unreadable."""
        text = self._text(path)
        if text is None:
            return {}
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            self.note(path, f"not valid YAML{where}: {getattr(err, 'problem', None) or err}")
            return {}
        return self.checked(path, data if data is not None else {}, shape) or {}

    def jsonl(self, path: Path) -> list[tuple[int, dict[str, Any]]]:
        """(line number, object) of a .jsonl file; lines that are not a JSON object are skipped and counted."""
        if not path.is_file():
            return []
        rows, bad = [], []
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append((number, row))
            else:
                bad.append(number)
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            self.note(
                path, f"line {bad[0]} is not a JSON object{more}: skipped (a torn last line after a kill?)"
            )
        return rows

    def checked(self, path: Path, data: Any, shape: Shape) -> dict[str, Any] | None:
        """`data` with every value of the wrong type (by `shape`) dropped and named; None when not an object."""
        if not isinstance(data, dict):
            self.note(path, f"{_type_name(data)}, not an object (another version's file?)")
            return None
        return self._fit(path, data, shape, "")

    def _fit(self, path: Path, data: dict[str, Any], shape: Shape, prefix: str) -> dict[str, Any]:
        kept = dict(data)
        for key, expected in shape.items():
            if key not in data or data[key] is None:
                continue
            value, where = data[key], f"{prefix}{key}"
            fitted = self._fit_value(path, value, expected, where)
            if fitted is _WRONG:
                self.note(path, f"{where} is {_type_name(value)}, not {_expected_name(expected)}: left out")
                del kept[key]
            else:
                kept[key] = fitted
        return kept

    def _fit_value(self, path: Path, value: Any, expected: Any, where: str) -> Any:
        if isinstance(expected, dict):
            return self._fit(path, value, expected, where + ".") if isinstance(value, dict) else _WRONG
        if isinstance(expected, list):
            if not isinstance(value, list):
                return _WRONG
            items = [self._fit_value(path, v, expected[0], f"{where}[{i}]") for i, v in enumerate(value)]
            return _WRONG if any(i is _WRONG for i in items) else items
        if expected is int and isinstance(value, bool):  # JSON's true is no trial number
            return _WRONG
        return value if isinstance(value, expected) else _WRONG

    def _text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            self.note(path, f"not UTF-8 text (byte {err.start}): a binary or damaged file")
        except OSError as err:
            self.note(path, f"cannot be read: {err.strerror or err}")
        return None


_WRONG = object()  # a value that does not fit its shape


def add_problem(unreadable: dict[str, str], name: str, problem: str) -> None:
    """One line per file: its problems joined."""
    unreadable[name] = f"{unreadable[name]}; {problem}" if name in unreadable else problem


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in TYPE_NAMES.items() if isinstance(value, kind)), type(value).__name__)


def _expected_name(expected: Any) -> str:
    if isinstance(expected, dict):
        return TYPE_NAMES[dict]
    if isinstance(expected, list):
        return f"a list of {_expected_name(expected[0]).removeprefix('an ').removeprefix('a ')}s"
    return TYPE_NAMES.get(expected, expected.__name__)
