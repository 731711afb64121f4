"""The exporters `autoglm export` runs by name, built-in or a plugin's: every entry of `EXPORTERS` is an `Exporter`.

An exporter starts from the merged fp32 model (`ExportSource`) and says what it wrote (`Exported`): a path, the
variants the comparison measures, and figures for export_report.json. The built-ins (variants.py) are classes
registered with `@EXPORTERS.register`. A plugin registers `name = "package.module:function"` in the entry-point
group `open_autoglm.exporters`; the function takes (merged model folder, output folder) and returns the path it
wrote, and runs as a `FunctionExporter` into out_dir/<name>/ (its format is one only it can run, so it is not
measured). `export.extra` names the exporters to run besides the built-in variants; export_report.json's
`plugins` lists what each wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from open_autoglm.registry import Registry

if TYPE_CHECKING:
    from open_autoglm.config.sections import ExportConfig
    from open_autoglm.export.compare import Variant
    from open_autoglm.export.merge import MergedModel

logger = logging.getLogger(__name__)


@dataclass
class ExportSource:
    """What every exporter starts from: the merged fp32 model (saved in `merged.path`, and loaded) and where to
    write. The rest is what the built-in classifier variants need (a plugin's gets the two folders only)."""

    merged: MergedModel
    out_dir: Path
    settings: ExportConfig  # opset, calibration rows, pruning
    max_length: int = 0
    prefix: str = ""  # the text prefix training put before every text
    labels: list[str] = field(default_factory=list)
    reference: Variant | None = None  # the fp32 PyTorch model, which the ONNX graphs must match
    check_texts: list[str] = field(default_factory=list)  # the test rows the ONNX check runs on
    # Rows pruning scores importance and recovers on, and rows static INT8 is calibrated on.
    train: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    quantize: tuple[str, ...] = ()  # dynamic and/or static INT8
    onnx: bool = False  # ONNX graphs asked for (the pruned model's INT8 graph too)
    seed: int = 0
    batch_size: int = 16  # of the pruned model's recovery fine-tune


@dataclass
class Exported:
    """What an exporter wrote."""

    path: Path | None  # None: measured in memory, nothing saved
    variants: list[Variant] = field(default_factory=list)  # what the comparison measures
    report: dict[str, Any] = field(default_factory=dict)  # sections of export_report.json


class Exporter(Protocol):
    """A class registered under its `name`, made with no arguments; `export` does the work."""

    @property
    def name(self) -> str: ...

    def export(self, source: ExportSource) -> Exported: ...


# A class (the built-ins; a plugin's may be one too) or a plugin's function (merged folder, output folder) -> path.
EXPORTERS: Registry[type[Exporter] | Callable[[Path, Path], Path]] = Registry(
    "exporter", entry_point_group="open_autoglm.exporters"
)


class FunctionExporter:
    """A plugin's exporter function as an `Exporter`: it writes into out_dir/<name>/."""

    def __init__(self, name: str, function: Callable[[Path, Path], Path]) -> None:
        self.name = name
        self.function = function

    def export(self, source: ExportSource) -> Exported:
        target = source.out_dir / self.name
        target.mkdir(parents=True, exist_ok=True)
        path = Path(self.function(source.merged.path, target))
        if not path.exists():
            raise RuntimeError(f"exporter {self.name!r} returned {path}, which does not exist")
        return Exported(path)


def exporter_named(name: str) -> Exporter:
    """The registered exporter, made; a plugin's function is wrapped so that every entry runs the same way."""
    entry = EXPORTERS.get(name)
    return entry() if isinstance(entry, type) else FunctionExporter(name, entry)


def run_exporters(names: Sequence[str], source: ExportSource) -> dict[str, Exported]:
    """Run each named exporter, in order; name -> what it wrote."""
    done = {}
    for name in names:
        done[name] = exporter_named(name).export(source)
        logger.info("exporter %s wrote %s", name, done[name].path or "(in memory)")
    return done
