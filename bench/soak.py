"""`python -m bench soak`: a week of event time through the live worker, compressed, to show that what it holds
stays flat.

Traffic: a few endpoints of one service with a daily cycle and an error burst each day, plus scanner noise (random
paths, nearly all 404), through the ingest path (`Ingestor`: batching, stamping, publishing; the routes and the
endpoint catalog as ingest applies them). An ingest restart every simulated hour — a new producer that ends with
its final batch, or every sixth hour a crash (no final batch) — and a worker restart (SIGKILL) every simulated
day. Publish times are the simulated clock, so idle and forgotten producers are judged as in a real week.

A notifier (`tailwatch notify`, the default channels) delivers the alerts to a loopback HTTP receiver standing in
for PagerDuty and Slack (e-mail is inactive: no SMTP server).

After each simulated day, once the worker has read everything sent (both stages at lag 0) and settled, it prints
the worker's RSS, the panes held, the checkpoint bytes, the service stage's panes held and checkpoint bytes, the
alert states and the logs-topic producers in the checkpoints (from `/metrics`), and the notifier's ledger records
held and RSS. The worker's RSS is read once it has settled: one period of its
`malloc_trim` (agents/malloc_trim.py, 10 s) after it read the logs, then 3 s of samples within 1 MB. Right after
reading the logs it may still be sending snapshots and its dashboard reading them back, and a reading then is a
passing peak, not what it holds through a day. The last line is `flat=<yes|no> max_growth=<x>` comparing days 2… with
day 1 (target: within 10 %); exit 1 when not flat.

`--bootstrap` runs on a Kafka of yours; the soak's logs topic is created there with `retention.ms=-1`, because the
publish times are the simulated clock (January 2026) and a default 7-day retention would delete the records.
`--store rocksdb://` runs the worker as the Kubernetes manifests do. `--heap-dir D` runs the worker under a heap
probe (`bench/_heap_worker.py`: tracemalloc diff per day, the Python heap's peak, glibc malloc's in-use and free
bytes, RSS after `malloc_trim`), to tell growth of Python objects from memory the allocator keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agents.commands.ingest import log_topic_specs
from agents.embedded_broker import EmbeddedBroker, free_port
from agents.ingest import IngestConfig, Ingestor
from agents.malloc_trim import TRIM_EVERY_S
from agents.publisher import Publisher
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from bench._heap_worker import growth_lines, probe_line, request_probe
from pipeline.parsing import ParseOutput

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
ENDPOINTS = ["/api/public/factory/templates", "/api/public/factory/templates/:slug",
             "/api/public/factory/capabilities", "/api/public/factory/build-specs/:runId"]
FIGURES = ("rss_mb", "panes", "checkpoint_bytes", "service_panes", "service_checkpoint_bytes", "producers", "ledger",
           "notifier_rss_mb")
# alert states are left out of the flatness check: 0 or a few, by which incident is open at the day's end


def record(t: int, endpoint: str, path: str, status: int, duration: float) -> dict[str, Any]:
    return {"service": "factory", "worker": "factory", "endpoint": endpoint, "method": "GET", "path": path,
            "status": status, "outcome": "ok", "event_time_ms": t, "duration_ms": duration,
            "duration_source": "log", "cpu_ms": 2, "wall_ms": None, "colo": "IAD", "country": "US", "tenant": None,
            "request_id": None, "level": "INFO", "log_endpoint": None, "error_code": None, "error_message": None,
            "truncated": False, "d1": []}


def hour_of_traffic(rng: random.Random, start: int, per_minute: int, scanners: int) -> list[dict[str, Any]]:
    """One hour from `start`: `per_minute` requests a minute per endpoint (more by day), an error burst on the
    last endpoint from 14:00 to 14:30 UTC, and `scanners` random scanned paths a minute."""
    out = []
    hour = (start % DAY_MS) // HOUR_MS
    busy = 1.0 + 0.5 * (8 <= hour < 20)
    for minute in range(60):
        base = start + minute * MINUTE_MS
        failing = hour == 14 and minute < 30
        for endpoint in ENDPOINTS:
            for _ in range(int(per_minute * busy)):
                status = 500 if failing and endpoint == ENDPOINTS[-1] and rng.random() < 0.8 else 200
                out.append(record(base + rng.randrange(MINUTE_MS), endpoint, endpoint, status,
                                  round(rng.lognormvariate(3.5, 0.6), 1)))
        for _ in range(scanners):
            path = "/" + "/".join(rng.choice(["wp-admin", "admin", ".env", "config", "backup", "phpmyadmin", "api",
                                              f"x{rng.randrange(10**9)}"]) for _ in range(rng.randint(1, 3)))
            out.append(record(base + rng.randrange(MINUTE_MS), path, path, 404 if rng.random() < 0.95 else 403, 3.0))
    out.sort(key=lambda r: r["event_time_ms"])
    return out


class SimulatedClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


async def ingest_day(settings: KafkaSettings, day: int, seed: int, clock: SimulatedClock,
                     per_minute: int, scanners: int) -> int:
    """24 simulated hours, each by its own ingest run (producer); returns the records sent. Every day has the same
    traffic (each hour of the day seeded alike, scanners' invented paths included), so a figure that moves from day to
    day moves with uptime, not with the traffic (with a new draw every day, panes held varied by 12 %)."""
    assert settings.bootstrap
    sent = 0
    for hour in range(24):
        start = START_MS + day * DAY_MS + hour * HOUR_MS
        records = hour_of_traffic(random.Random(seed * 24 + hour), start, per_minute, scanners)
        publisher = Publisher(settings.bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=False,
                              clock_ms=clock)
        await publisher.start()
        ingestor = Ingestor(publisher, settings.partitions, IngestConfig(), producer=f"soak-d{day}-h{hour}")
        feed = ingestor.feed("soak")
        for i in range(0, len(records), 2_000):  # arriving over the hour, with heartbeats as a live ingest sends
            chunk = records[i:i + 2_000]
            clock.now_ms = chunk[-1]["event_time_ms"] + 2_000
            ingestor.extractor.catalog.assign(chunk)  # what LogParser does to the records ingest reads
            await feed.push(ParseOutput(records=chunk))
            await feed.flush(heartbeat=True)
        clock.now_ms = start + HOUR_MS
        crash = hour % 6 == 5
        await feed.flush(heartbeat=True, final=not crash)  # a clean stop ends with the final batch; a crash does not
        await publisher.stop()
        sent += len(records)
    return sent


def start_worker(settings: KafkaSettings, data_dir: str, port: int, store: str = "memory://",
                 heap_dir: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": settings.bootstrap or ""}
    module = "agents.cli"
    if heap_dir is not None:  # the worker with its heap probe (bench/_heap_worker.py)
        heap_dir.mkdir(parents=True, exist_ok=True)
        env["TAILWATCH_SOAK_HEAP_DIR"] = str(heap_dir)
        module = "bench._heap_worker"
    worker = subprocess.Popen([sys.executable, "-m", module, "worker", "--topic-prefix", settings.topic_prefix,
                               "--app-id", f"{settings.topic_prefix}-metrics", "--data-dir", data_dir,
                               "--web-port", str(port), "--store", store], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(Path(data_dir) / "worker.log", "ab"))  # noqa: SIM115 - the child's
    return worker


class _Receiver(BaseHTTPRequestHandler):
    """PagerDuty and Slack on loopback: every message accepted, counted."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.received += 1
        body = b'{"status":"success","message":"Event processed","dedup_key":"x"}'
        self.send_response(202 if self.path.startswith("/v2/") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def start_notifier(settings: KafkaSettings, data_dir: str, port: int, receiver_port: int) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{receiver_port}"
    env = {**os.environ, "TAILWATCH_KAFKA_BOOTSTRAP": settings.bootstrap or "",
           "PAGERDUTY_INTEGRATION_KEY": "soak-key", "PAGERDUTY_EVENTS_URL": f"{url}/v2/enqueue",
           "SLACK_CRITICAL_WEBHOOK": f"{url}/slack/critical", "SLACK_ALERTS_WEBHOOK": f"{url}/slack/alerts",
           "SLACK_MONITORING_WEBHOOK": f"{url}/slack/monitoring"}
    return subprocess.Popen([sys.executable, "-m", "agents.cli", "notify", "--topic-prefix", settings.topic_prefix,
                             "--data-dir", str(Path(data_dir) / "notifier"), "--web-port", str(port)], env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=open(Path(data_dir) / "notifier.log", "ab"))


def scrape(port: int) -> dict[str, float]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(tailwatch_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if match:
            out[match[1]] = out.get(match[1], 0.0) + float(match[3])
    return out


def wait_caught_up(port: int, records: int, timeout_s: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    figures: dict[str, float] = {}
    while time.monotonic() < deadline:
        figures = scrape(port)
        if figures.get("tailwatch_records_in_total", figures.get("tailwatch_records_in", -1)) >= records \
                and figures.get("tailwatch_consumer_lag", 1) == 0 \
                and figures.get("tailwatch_service_consumer_lag", 0) == 0:
            return figures
        time.sleep(0.5)
    seen = {name: value for name, value in figures.items() if "records_in" in name or "lag" in name}
    raise TimeoutError(f"the worker did not read {records} records in {timeout_s} s (last /metrics: {seen})")


def wait_ledger_settled(port: int, timeout_s: float = 120.0) -> float:
    """The notifier's ledger records held, once two scrapes a second apart agree (its deliveries settled)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        held = scrape(port).get("tailwatch_ledger_records_held")
        if held is not None and held == last:
            return held
        last = held
        time.sleep(1.0)
    return last if last is not None else -1.0


def settled_rss_mb(pid: int, timeout_s: float = 60.0) -> float:
    """The worker's RSS once it has settled: having read the logs it may still be sending snapshots and
    checkpoints, and its dashboard reading them back. Settled: one period of its `malloc_trim` has passed (what it
    holds between peaks, as it does nearly all of a real day), then 3 s of samples within 1 MB of each other."""
    time.sleep(TRIM_EVERY_S + 1.0)
    samples: list[float] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples = [*samples[-5:], rss_mb(pid)]
        if len(samples) == 6 and max(samples) - min(samples) <= 1.0:
            break
        time.sleep(0.5)
    return samples[-1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--per-minute", type=int, default=20, help="requests a minute per endpoint (by night)")
    parser.add_argument("--scanners", type=int, default=10, help="random scanned paths a minute")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bootstrap", default=None, help="a Kafka to use instead of the embedded broker")
    parser.add_argument("--no-worker-restart", action="store_true", help="keep one worker the whole week")
    parser.add_argument("--store", default="memory://",
                        help="the worker's table store: memory:// or rocksdb:// (as the Kubernetes manifests run it)")
    parser.add_argument("--heap-dir", type=Path, default=None,
                        help="run the worker with a heap probe (tracemalloc, malloc statistics) writing here, and "
                             "print what grew each day (slower; best with --no-worker-restart)")
    args = parser.parse_args(argv)
    clock = SimulatedClock(START_MS)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as data_dir, EmbeddedBroker() if args.bootstrap is None else _Given(
            args.bootstrap) as broker:
        settings = KafkaSettings(broker.bootstrap, f"soak{int(time.time())}", 4, 1)
        assert settings.bootstrap
        specs = log_topic_specs(settings)
        if args.bootstrap is not None:  # publish times are the simulated clock, in the past: a Kafka's retention
            # (7 days by default) would delete the records before the worker reads them; keep them
            specs = [replace(spec, configs={**spec.configs, "retention.ms": "-1"}) for spec in specs]
        asyncio.run(ensure_topics(settings.bootstrap, specs))
        port, notify_port = free_port(), free_port()
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        notifier = start_notifier(settings, data_dir, notify_port, receiver.server_address[1])
        restarts = 0
        heap_dir = None if args.heap_dir is None else args.heap_dir / f"worker-{restarts}"
        worker = start_worker(settings, data_dir, port, args.store, heap_dir)
        probes = 0
        total = 0  # records sent since the worker (re)started: what it must have read before figures are taken
        print(f"{'day':>3} {'records':>9} {'rss_mb':>7} {'panes':>6} {'checkpoint_bytes':>16} {'svc_panes':>9} "
              f"{'svc_checkpoint_bytes':>20} {'alert_states':>12} "
              f"{'producers':>9} {'ledger':>6} {'notifier_rss_mb':>15} {'delivered':>9} {'wall_s':>6}", flush=True)
        try:
            for day in range(args.days):
                started = time.monotonic()
                sent = asyncio.run(ingest_day(settings, day, args.seed, clock, args.per_minute, args.scanners))
                total += sent
                wait_caught_up(port, total, timeout_s=600)
                rss = settled_rss_mb(worker.pid)
                figures = scrape(port)  # once settled: idle partitions have checkpointed what they hold
                row = {"rss_mb": rss, "panes": figures.get("tailwatch_panes_held", 0),
                       "checkpoint_bytes": figures.get("tailwatch_checkpoint_bytes", 0),
                       "service_panes": figures.get("tailwatch_service_panes_held", 0),
                       "service_checkpoint_bytes": figures.get("tailwatch_service_checkpoint_bytes", 0),
                       "alert_states": figures.get("tailwatch_alert_states", 0),
                       "producers": figures.get("tailwatch_producers_held", 0),
                       "ledger": wait_ledger_settled(notify_port), "notifier_rss_mb": rss_mb(notifier.pid)}
                rows.append(row)
                print(f"{day + 1:>3} {sent:>9} {row['rss_mb']:>7.1f} {row['panes']:>6.0f} "
                      f"{row['checkpoint_bytes']:>16.0f} {row['service_panes']:>9.0f} "
                      f"{row['service_checkpoint_bytes']:>20.0f} {row['alert_states']:>12.0f} {row['producers']:>9.0f} "
                      f"{row['ledger']:>6.0f} {row['notifier_rss_mb']:>15.1f} {_Receiver.received:>9} "
                      f"{time.monotonic() - started:>6.1f}", flush=True)
                if heap_dir is not None:
                    probes += 1
                    print(probe_line(request_probe(heap_dir, probes)), flush=True)
                    if probes > 1:
                        print("\n".join(growth_lines(heap_dir, probes - 1, probes)), flush=True)
                # a worker restart a day (unless --no-worker-restart): SIGKILL, then a new one on the same data
                if day + 1 < args.days and not args.no_worker_restart:
                    worker.kill()
                    worker.wait(timeout=30)
                    restarts += 1
                    heap_dir = None if args.heap_dir is None else args.heap_dir / f"worker-{restarts}"
                    worker = start_worker(settings, data_dir, port, args.store, heap_dir)
                    probes = 0
                    wait_caught_up(port, 0, timeout_s=120)
                    total = 0
        except TimeoutError:
            tail = (Path(data_dir) / "worker.log").read_text(errors="replace").splitlines()[-60:]
            print("the worker's log ends with:", *tail, sep="\n", file=sys.stderr)
            raise
        finally:
            for child in (worker, notifier):
                child.kill()
                child.wait(timeout=30)
            receiver.shutdown()
    first = rows[0]
    growth, name, day = max(((row[name] / first[name], name, day) for day, row in enumerate(rows[1:], start=2)
                             for name in FIGURES if first[name]), default=(1.0, "-", 1))
    rss = max((row["rss_mb"] / first["rss_mb"] for row in rows[1:]), default=1.0)
    flat = growth <= 1.10
    print(f"flat={'yes' if flat else 'no'} max_growth={growth:.3f} ({name}, day {day}) rss_growth={rss:.3f}")
    return 0 if flat else 1


class _Given:
    """A broker someone else runs."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def __enter__(self) -> _Given:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
