"""`autoglm report`: read the run folder, draw it, write RUN_DIR/report.html."""

from __future__ import annotations

from pathlib import Path

from open_autoglm.atomic import write_text
from open_autoglm.report.info import load_run
from open_autoglm.report.render import render_report
from open_autoglm.run_folder import RunFolder


def write_report(run_dir: Path, lang: str = "en") -> Path:
    """Write the run's self-contained report (English or Chinese) and return its path.

    Written whole or not at all: a full disk leaves the earlier report.html as it was.
    """
    page = render_report(load_run(Path(run_dir)), lang)
    path = RunFolder(Path(run_dir)).report
    write_text(path, page)
    return path
