"""`tailwatch notify` as a child process (for `tailwatch run` and tests): its log lines are relayed (or kept) and
watched for "notifier ready" and "deliveries settled"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque

import orjson

from agents.child_process import spawn, stop_child
from agents.logs import child_log_env, relay_line
from agents.settings import KafkaSettings

MAX_LINES_KEPT = 10_000  # the notifier's last log lines, for `stderr`


class NotifierProcess:
    def __init__(self, settings: KafkaSettings, channels: str, data_dir: str, relay: bool = True,
                 env: dict[str, str] | None = None, app_id: str | None = None,
                 extra: list[str] | None = None) -> None:
        # the same settings (secrets: env only)
        child_env = child_log_env({**os.environ, **(env or {}), **settings.child_env()})
        self.relay = relay
        self.lines: deque[str] = deque(maxlen=MAX_LINES_KEPT)  # for `stderr` (tests, diagnostics): bounded
        self.ready = threading.Event()
        self.settled_positions: dict[int, int] = {}
        self._changed = threading.Condition()
        self.process = spawn(
            [sys.executable, "-m", "agents.cli", "notify", "--topic-prefix", settings.topic_prefix,
             "--partitions", str(settings.partitions), "--channels", channels, "--data-dir", data_dir,
             "--app-id", app_id or f"{settings.topic_prefix}-notifier", *(extra or [])],
            env=child_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._reading = threading.Thread(target=self._read, daemon=True)
        self._reading.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if '"notifier ready"' in line:
                self.ready.set()
            elif '"deliveries settled"' in line:
                positions = orjson.loads(line).get("fields", {}).get("positions", {})
                with self._changed:
                    self.settled_positions = {int(p): o for p, o in positions.items()}
                    self._changed.notify_all()
            if self.relay:
                relay_line(line)
        self.ready.set()
        with self._changed:
            self._changed.notify_all()

    def wait_settled(self, positions: dict[int, int], timeout_s: float) -> bool:
        """Wait until every alert before `positions` (partition → next offset) has all its delivery outcomes."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not all(self.settled_positions.get(p, 0) >= o for p, o in positions.items()):
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> bool:
        """SIGTERM (it finishes what it is sending, or leaves it unacknowledged), SIGKILL after the grace period;
        True when it stopped by itself. Returns once its last log lines are read (and relayed)."""
        stopped = stop_child(self.process)
        self._reading.join(2.0)
        return stopped
