"""`autoglm dashboard`: optuna-dashboard on the run's study storage, the live view of a running search."""

from __future__ import annotations

from pathlib import Path

from optuna.storages import BaseStorage

from open_autoglm.report.info import study_storage


def dashboard_storage(run_dir: Path) -> str | BaseStorage:
    """The storage `tune` keeps the run's study in; an error that says so when the run has none."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it has no config.yaml")
    storage = study_storage(run_dir)
    if storage is None:
        raise FileNotFoundError(
            f"{run_dir} has no study (no study.db or study.journal): `autoglm tune` makes one, "
            "`autoglm train` does not; `autoglm report` shows a train run"
        )
    return storage


def serve_dashboard(run_dir: Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard on the run's study until interrupted (Ctrl-C)."""
    import optuna_dashboard

    optuna_dashboard.run_server(dashboard_storage(run_dir), host=host, port=port)
