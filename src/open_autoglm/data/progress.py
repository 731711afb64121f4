"""A progress line for streamed rows: how many so far and how fast (the total is unknown while streaming)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class RowProgress:
    """`with RowProgress("preparing data") as p: p.advance(n)`; prints nothing when disabled."""

    def __init__(self, description: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self.rows = 0
        self.started = time.perf_counter()
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:,.0f} rows"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._progress.add_task(description, total=None, rate="")

    def __enter__(self) -> RowProgress:
        self._progress.start()
        return self

    def advance(self, rows: int) -> None:
        self.rows += rows
        seconds = time.perf_counter() - self.started
        rate = f"{self.rows / seconds:,.0f} rows/s" if seconds > 0 else ""
        self._progress.update(self._task, advance=rows, rate=rate)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()
