"""Exporters from other packages: each turns the merged fp32 model folder into a format of its own.

A plugin registers `name = "package.module:function"` in the entry-point group `open_autoglm.exporters`; the
function takes (merged model folder, output folder) and returns the path it wrote. `export.extra` names the ones
to run; export_report.json lists what each wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from open_autoglm.registry import Registry

EXPORTERS: Registry[Callable[[Path, Path], Path]] = Registry(
    "exporter", entry_point_group="open_autoglm.exporters"
)
logger = logging.getLogger(__name__)


def run_plugin_exporters(names: Sequence[str], merged_dir: Path, out_dir: Path) -> dict[str, str]:
    """Run each named exporter into out_dir/<name>/; name -> the path it wrote."""
    written = {}
    for name in names:
        target = out_dir / name
        target.mkdir(parents=True, exist_ok=True)
        path = Path(EXPORTERS.get(name)(merged_dir, target))
        if not path.exists():
            raise RuntimeError(f"exporter {name!r} returned {path}, which does not exist")
        logger.info("exporter %s wrote %s", name, path)
        written[name] = str(path)
    return written
