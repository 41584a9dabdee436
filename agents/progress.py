"""A progress bar for long replays and reports: bytes read (a bar when the inputs' size is known), records and
records/s, on stderr. Off when stderr is not a terminal, so pipes and logs stay clean — and rich is then not even
imported (a fifth of a second of `replay`'s start-up on a busy machine)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

_GZIP_MAGIC = b"\x1f\x8b"


def _bar(name: str, total: int | None) -> tuple[Progress, TaskID]:
    """The bar: rich imported here, only when a terminal shows it."""
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text  # noqa: PLC0415

    class RecordsColumn(ProgressColumn):
        """`12,345 records · 45,678 records/s` (the rate over the whole run so far)."""

        def render(self, task: Task) -> Text:
            records = int(task.fields.get("records", 0))
            elapsed = task.elapsed or 0.0
            rate = records / elapsed if elapsed > 0 else 0.0
            return Text(f"{records:,} records · {rate:,.0f} records/s", style="progress.data.speed")

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
                        RecordsColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=False,
                        refresh_per_second=5)
    return progress, progress.add_task(name, total=total, records=0)


def known_size(paths: list[str]) -> int | None:
    """Total bytes the reader will see: the files' sizes, or None for stdin or gzip (compressed size differs)."""
    total = 0
    for path in paths:
        if path == "-":
            return None
        with open(path, "rb") as probe:
            if probe.read(2) == _GZIP_MAGIC:
                return None
        total += os.path.getsize(path)
    return total


class RecordProgress:
    """`with RecordProgress(paths, "replay") as progress: … progress.advance(len(chunk), len(records))`."""

    def __init__(self, paths: list[str], label: str, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.records = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if not self.enabled:
            return
        try:
            total = known_size(paths)
        except OSError:
            total = None  # a missing file is reported by the command itself
        name = label if len(paths) != 1 else f"{label} {Path(paths[0]).name}"
        self._progress, self._task = _bar(name, total)

    def __enter__(self) -> RecordProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, nbytes: int, records: int) -> None:
        self.records += records
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=nbytes, records=self.records)
