"""SIGTERM and SIGINT to a command that runs child processes (`run`, `demo`): an orderly stop, not an exit.

Python's default SIGTERM ends the process on the spot, leaving its children running; the default SIGINT raises
KeyboardInterrupt wherever the main thread happens to be. Inside `StopSignals` both are recorded instead, and
the asyncio task attached with `attach()` is cancelled, so its `finally` blocks run: ingest flushes, then the
children are stopped in order. Only the first signal cancels; a second one is logged and changes nothing (each
child's grace period already bounds the stop). Code between the asyncio phases checks `requested`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger("tailwatch.stop")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self) -> None:
        self.received: int | None = None  # the first stop signal, once one came
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def attach(self) -> None:
        """Cancel the current asyncio task on a stop signal (from now on, or now if one came already)."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self.requested:
            raise asyncio.CancelledError

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            log.warning("already stopping", extra={"fields": {"signal": name}})
            return
        self.received = signum
        log.info("stopping", extra={"fields": {"signal": name}})
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done() and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
