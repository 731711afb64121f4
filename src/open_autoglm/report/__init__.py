"""Seeing a run: the HTML report (read a run folder into plain data, then draw it) and the live dashboard."""

from open_autoglm.report.dashboard import dashboard_storage, serve_dashboard
from open_autoglm.report.info import RunInfo, load_run
from open_autoglm.report.job import write_report
from open_autoglm.report.labels import LANGUAGES
from open_autoglm.report.render import render_report

__all__ = [
    "LANGUAGES",
    "RunInfo",
    "dashboard_storage",
    "load_run",
    "render_report",
    "serve_dashboard",
    "write_report",
]
