"""The child side of `agents/child_process.py`: a `tailwatch` command started by another one (`run`'s worker and
notifier) stops when its parent is gone, even one that died by SIGKILL.

The parent-death signal (SIGTERM, set before exec) stops it at once on Linux. As a fallback (other platforms, a
parent that was a thread which ended), a daemon thread compares `os.getppid()` with the pid the parent passed in
`TAILWATCH_PARENT_PID` every `POLL_S`; when the parent is gone, either way, the child sends itself SIGTERM (its
orderly stop: the worker checkpoints, the notifier finishes what it is sending) and exits after `grace_s` if that
stop has not ended it by then: nobody is left to kill it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from agents.child_process import PARENT_ENV, set_death_signal
from agents.stop_deadline import exit_after

log = logging.getLogger("tailwatch.parent")

POLL_S = 0.5
# An orphan's orderly stop takes ~1 s with Kafka reachable; without it (the embedded broker died with the parent)
# Faust waits for it for a minute: bound that.
ORPHAN_GRACE_S = 5.0
ORPHAN_EXIT_CODE = 1


def watch_parent(grace_s: float = ORPHAN_GRACE_S) -> int | None:
    """Start watching the parent named in `TAILWATCH_PARENT_PID` (removed from the environment, so the children
    of this process do not inherit it); returns its pid, or None when this process was not started by `spawn`."""
    raw = os.environ.pop(PARENT_ENV, None)
    if not raw or not raw.isdigit():
        return None
    parent = int(raw)
    set_death_signal(signal.SIGTERM)  # `spawn` set it already on Linux; harmless again
    threading.Thread(target=_watch, args=(parent, grace_s), name="parent watch", daemon=True).start()
    return parent


def _watch(parent: int, grace_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    log.warning("parent process gone; stopping", extra={"fields": {"parent": parent}})
    exit_after(grace_s, "still running after the parent left; exiting", ORPHAN_EXIT_CODE)
    os.kill(os.getpid(), signal.SIGTERM)
