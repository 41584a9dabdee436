"""Helpers for tests that run `tailwatch worker --web-port` and read its /health and /metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from agents.settings import KafkaSettings
from agents.stall_watchdog import EXIT_CODE as STALL_EXIT_CODE
from pipeline.synthetic import DEMO_MIX, DEMO_START_MS, demo_incidents, generate_events, render_capture
from tests.kafka_tier import free_port

# Every channel the default rules route to: with these configured the channels check passes.
DEFAULT_CHANNELS = "pagerduty,slack-critical,slack-alerts,slack-monitoring,email"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def incident_capture(path: Path, minutes: int = 40, seed: int = 3, disorder_ms: int = 15_000) -> Path:
    """A generated multi-endpoint capture (8 endpoint groups) with the demo's incidents, so alerts fire, and
    deliveries up to `disorder_ms` out of order, beyond the default 10 s lateness, so some records are late."""
    with path.open("wb") as out:
        for chunk in render_capture(generate_events(seed, DEMO_START_MS, minutes, 120,
                                                    incidents=demo_incidents(DEMO_START_MS),
                                                    disorder_ms=disorder_ms, mix=DEMO_MIX), layout="jsonl"):
            out.write(chunk)
    return path


class WebWorker:
    """A `tailwatch worker` subprocess with its web server on a free 127.0.0.1 port; its log goes to a file."""

    def __init__(self, settings: KafkaSettings, data_dir: Path, *, app_id: str | None = None,
                 channels: str | None = DEFAULT_CHANNELS, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": settings.bootstrap or ""}
        env.pop("TAILWATCH_CHANNELS_FILE", None)
        if channels is None:
            env.pop("TAILWATCH_CHANNELS", None)
        else:
            env["TAILWATCH_CHANNELS"] = channels
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "worker.log"
        self.log = self.log_path.open("w")
        self.args = [sys.executable, "-m", "agents.cli", "worker", "--topic-prefix", settings.topic_prefix,
                     "--partitions", str(settings.partitions), "--app-id",
                     app_id or f"{settings.topic_prefix}-metrics", "--data-dir", str(data_dir),
                     "--web-port", str(self.port), "--web-bind", "127.0.0.1", "--stall-seconds", "10", *extra]
        self.env = env
        self.restarts = 0
        self.killed = False
        self.process = self._start()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=self.log)

    def _supervise(self) -> None:
        """Restart the worker when its stall watchdog made it exit (code 70), as Kubernetes or compose would."""
        while True:
            code = self.process.wait()
            if self.killed or code != STALL_EXIT_CODE:
                return
            self.restarts += 1
            self.process = self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        self.killed = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.log.close()

    async def get(self, path: str, timeout_s: float = 10.0) -> tuple[int, str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session, \
                session.get(self.url + path) as response:
            return response.status, await response.text()

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.get(self.url + "/health") as response:
            return response.status, await response.json()

    async def metrics(self) -> Samples:
        status, text = await self.get("/metrics")
        assert status == 200, text
        return parse_metrics(text)

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the web server answers /metrics and the worker logged that it is ready."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited:\n{self.log_text()[-3000:]}"
            if '"worker ready"' in self.log_text():
                try:
                    await self.get("/metrics", timeout_s=5)
                    return
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.log_text()[-3000:]}")


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client's own parser."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def by_label(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, pause_s: float = 0.25) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(pause_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
