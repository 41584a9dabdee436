"""Starting and stopping the child processes a command runs (the embedded broker, `run`'s worker and notifier,
`ingest`'s wrangler tails), so that none outlives its parent.

- `spawn` starts a child in its own process group (a Ctrl-C in the terminal reaches only the parent, which stops
  its children in order) with a parent-death signal: on Linux the kernel sends it `death_signal` when the parent
  dies, even by SIGKILL (prctl PR_SET_PDEATHSIG, set between fork and exec, so it covers native binaries too).
  The kernel sends it when the *thread* that started the child ends, so start children from a thread that lives
  as long as they should (the main thread, or the event loop's).
- A Python child (`python -m agents.cli …`) also gets its parent's pid in `TAILWATCH_PARENT_PID`:
  `agents/parent_watch.py` watches it as a fallback (other platforms, a lost signal) and bounds its own stop.
- `stop_child` asks a child to stop (SIGTERM) and kills it after a bounded grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

STOP_TIMEOUT_S = 10.0  # a child's grace period between SIGTERM and SIGKILL
PARENT_ENV = "TAILWATCH_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl  # the C library python runs on
        return function
    return None


_PRCTL = _prctl()  # looked up once, in the parent: the code run between fork and exec stays minimal


def set_death_signal(signum: int) -> bool:
    """Ask the kernel to send this process `signum` when its parent (thread) dies; False where unsupported."""
    return _PRCTL is not None and _PRCTL(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def death_signal_preexec(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that sets the parent-death signal; and if the parent already died before it was set, sends
    it at once. None where unsupported."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        set_death_signal(signum)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return preexec


def spawn(args: Sequence[str], *, death_signal: int = signal.SIGTERM, env: Mapping[str, str] | None = None,
          **popen: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(args, …)` for a child that must not outlive this process (see the module docstring)."""
    child_env = {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}
    return subprocess.Popen(list(args), env=child_env, process_group=0,
                            preexec_fn=death_signal_preexec(death_signal), **popen)  # noqa: PLW1509


def stop_child(process: subprocess.Popen[Any], timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, and SIGKILL if it has not exited within `timeout_s`. True when it ended by itself (or had
    already ended), False when it had to be killed."""
    if process.poll() is not None:
        return True
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
        return False
