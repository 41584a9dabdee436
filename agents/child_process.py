"""Stopping the child processes `tailwatch run` starts (the worker, the notifier)."""

from __future__ import annotations

import subprocess
from typing import Any

STOP_TIMEOUT_S = 10.0


def stop_child(process: subprocess.Popen[Any], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout_s`; nothing if it already ended."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
