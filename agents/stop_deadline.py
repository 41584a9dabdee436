"""A bound on an orderly stop: once it has begun, the process exits after a deadline even if it has not ended.

An orderly stop of a Faust worker (the worker's checkpoint, Faust committing offsets, flushing its producer,
leaving the group) needs Kafka. Without it Faust waits for each of its services up to its shutdown timeout (a
minute each): a worker whose broker is gone would not stop on SIGTERM or Ctrl-C for minutes, and ignores a second
signal. `exit_after` starts a daemon thread that ends the process when the deadline passes, logging why. Nothing
is lost by it: what no checkpoint holds is read again after a restart (the worker's exactly-once resume), and a
process that ends in time takes the thread with it.

`bounded_faust_worker` is the Faust worker of `tailwatch worker` and `tailwatch notify` with that bound (their
`--stop-timeout`); an orphan's stop (`agents/parent_watch.py`) is bounded the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("tailwatch.stop")

# Kafka reachable, a worker's or notifier's stop takes a few seconds. The grace periods before SIGKILL in deploy/
# and docker-compose.yml (worker 90 s, notifier 40 s) are longer, so the process says why it ends (tested there).
DEFAULT_STOP_TIMEOUT_S = 30.0


def exit_after(seconds: float, message: str, code: int) -> None:
    """From now on: if the process still runs `seconds` later, log `message` (an error) and exit with `code`."""
    def expire() -> None:
        time.sleep(seconds)
        log.error(message, extra={"fields": {"seconds": seconds, "exit_code": code}})
        logging.shutdown()
        os._exit(code)

    threading.Thread(target=expire, name="stop deadline", daemon=True).start()


def bounded_faust_worker(app: Any, stop_timeout_s: float, exit_code: int,
                         crash_exit_code: Callable[[BaseException], int],
                         before_stop: Callable[[Any], Awaitable[None]] | None = None) -> Any:
    """A Faust worker for `app` whose stop ends the process within `stop_timeout_s` (0: no bound) when it does not
    end by itself: with `exit_code` after SIGTERM or SIGINT, with `crash_exit_code(crash)` when the stop follows a
    crash (logged by Faust, re-raised only at the end of a stop that finishes). `before_stop(worker)` runs first
    (the stream worker's checkpoint)."""
    import faust  # noqa: PLC0415 - heavy; only the commands that run a Faust app need it

    class BoundedStopWorker(faust.Worker):
        async def on_stop(self) -> None:  # the stop begins: before the app (consumer, producer, tables) stops
            crash = self.crash_reason or app.crash_reason
            if stop_timeout_s > 0 and crash is None:
                exit_after(stop_timeout_s, "the stop did not finish in time (is Kafka reachable?): exiting; what no "
                           "checkpoint holds is read again after a restart", exit_code)
            elif stop_timeout_s > 0:
                exit_after(stop_timeout_s, f"the stop after a crash ({type(crash).__name__}) did not finish in time: "
                           "exiting", crash_exit_code(crash))
            if before_stop is not None:
                await before_stop(self)
            await super().on_stop()

    return BoundedStopWorker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False, override_logging=False)
