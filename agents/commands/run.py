"""`tailwatch run --from FILE… [--exit-when-done]`: the whole live pipeline in one command.

ingest → Kafka (the embedded broker unless one is configured) → metrics worker (a Faust worker process: panes,
rules) → the alerts topic → the notifier (a second child process: PagerDuty, Slack, e-mail). The alert events it
published are printed as JSON Lines on stdout. With `--exit-when-done` it exits 0 once the input is fully
processed and every alert has its delivery outcomes; without it, it keeps running (and keeps printing new
alerts) until stopped. With `--web-port P` the worker serves /health and /metrics on P and the notifier on
`--notify-web-port` (default P + 1).

SIGTERM or SIGINT stops it in order (ingest, worker, notifier, broker; see `run_pipeline`) and it exits 0, or 1
when a child had to be killed after its grace period. Its children die with it even when it is killed
(`agents/child_process.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from agents.child_process import spawn, stop_child
from agents.commands.common import (
    add_kafka_args,
    add_route_args,
    check_input_files,
    extractor_from,
    kafka_settings_from,
)
from agents.commands.notify_cmd import notify_topic_specs
from agents.commands.replay import alert_order
from agents.commands.worker import add_web_args, web_args, worker_topic_specs
from agents.embedded_broker import BrokerError, kafka_bootstrap
from agents.ingest import IngestConfig, Ingestor
from agents.logs import child_log_env, relay_line
from agents.notify.config import DEFAULT_CHANNELS, ChannelFileError, load_channels
from agents.notify.process import NotifierProcess
from agents.publisher import Publisher
from agents.rules_files import DEFAULT_RULES, RuleFileError, load_rules
from agents.settings import KafkaSettings
from agents.sources import chunks_of, report_input_problems, source_name
from agents.stop_signals import StopSignals
from agents.topic_reader import topic_messages
from agents.topics import KafkaUnavailable, ensure_topics, is_embedded_broker
from pipeline.batching import DEFAULT_LATENESS_MS

DONE_TIMEOUT_S = 1800.0
RELAY_DRAIN_S = 2.0  # after a child exited, how long its last log lines may take to be relayed

log = logging.getLogger("tailwatch.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="files", nargs="+", required=True, metavar="FILE",
                        help="captures to run through the pipeline (plain or .gz), in time order")
    parser.add_argument("--exit-when-done", action="store_true", help="exit once the input is fully processed")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="rule file (default: the spec's rules)")
    parser.add_argument("--lateness-ms", type=int, default=DEFAULT_LATENESS_MS, help="allowed lateness")
    parser.add_argument("--channels", default=str(DEFAULT_CHANNELS),
                        help="notification channel file (default: the spec's, secrets from the environment)")
    add_kafka_args(parser)
    add_route_args(parser)
    add_web_args(parser)  # the worker serves /health and /metrics
    parser.add_argument("--notify-web-port", type=int, default=None,
                        help="the notifier serves /health and /metrics (notification attempts and failures per "
                             "channel) on this port (default: --web-port + 1 when --web-port is given)")


def notify_web_args(args: argparse.Namespace) -> list[str]:
    """The notifier's web options: `--notify-web-port`, else the port after `--web-port`; none without either."""
    port = getattr(args, "notify_web_port", None)
    web_port = getattr(args, "web_port", None)
    if port is None and web_port is not None:
        port = web_port + 1
    if port is None:
        return []
    return ["--web-port", str(port), "--web-bind", args.web_bind]


class WorkerProcess:
    """`tailwatch worker` as a child process; its log lines are relayed to stderr and watched for milestones."""

    def __init__(self, settings: KafkaSettings, rules: str, data_dir: str, extra: list[str] | None = None,
                 channels: str | None = None) -> None:
        env = child_log_env({**os.environ, **settings.child_env()})  # the same file and address: the same settings
        if channels:  # /health's channels check reads the notifier's channel file
            env.setdefault("TAILWATCH_CHANNELS_FILE", channels)
        self.ready = threading.Event()
        self.done = threading.Event()
        self.process = spawn(
            [sys.executable, "-m", "agents.cli", "worker",
             "--topic-prefix", settings.topic_prefix,
             "--partitions", str(settings.partitions), "--rules", rules, "--data-dir", data_dir,
             "--app-id", f"{settings.topic_prefix}-metrics", *(extra or [])],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._relaying = threading.Thread(target=self._relay, daemon=True)
        self._relaying.start()

    def _relay(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if '"worker ready"' in line:
                self.ready.set()
            elif '"input fully processed"' in line:
                self.done.set()
            relay_line(line)
        self.ready.set()
        self.done.set()

    def stop(self) -> bool:
        """SIGTERM (it checkpoints what it holds), SIGKILL after the grace period; True when it stopped by itself.
        Returns once its last log lines are relayed."""
        stopped = stop_child(self.process)
        self._relaying.join(RELAY_DRAIN_S)
        return stopped


def log_level() -> str:
    """This process's log level, for the worker it starts (its milestones are logged at INFO, and always read)."""
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())


async def _wait(event: threading.Event, timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, event.wait, timeout_s)


async def run_pipeline(args: argparse.Namespace, settings: KafkaSettings,
                       alerts_out: list[dict[str, Any]] | None = None, stop: StopSignals | None = None,
                       notifier_env: dict[str, str] | None = None) -> int:
    """Run the pipeline on `args.files`. With `args.exit_when_done`, the alerts go to `alerts_out` when given
    (else stdout, as JSON Lines) in `alert_order`; without it, they are printed as they come until stopped.

    A stop signal (`stop`) cancels it: ingest flushes what it read, then the worker (it checkpoints) and the
    notifier (it finishes or leaves unacknowledged what it is sending) are stopped, in that order; the caller
    stops the broker last. It then returns 0, or 1 when a child had to be killed after its grace period.
    `notifier_env` overrides the notifier's environment (the demo empties the channels' secrets)."""
    if stop is not None:
        stop.attach()
    bootstrap = settings.bootstrap
    assert bootstrap
    # Both lists hold the alerts topic; Apache Kafka refuses a CreateTopics naming a topic twice (error 42).
    specs = {spec.name: spec for spec in worker_topic_specs(settings) + notify_topic_specs(settings)}
    await ensure_topics(bootstrap, list(specs.values()), security=settings.security, create=settings.create_topics)
    embedded = await is_embedded_broker(bootstrap, security=settings.security)
    with tempfile.TemporaryDirectory(prefix="tailwatch-run-") as data_dir:
        channels = getattr(args, "channels", str(DEFAULT_CHANNELS))
        worker = WorkerProcess(settings, args.rules, data_dir, web_args(args), channels)
        notifier = NotifierProcess(settings, channels, data_dir, env=notifier_env,
                                   extra=notify_web_args(args))
        code: int | None = None
        try:
            code = await _drive(args, settings, worker, notifier, embedded, alerts_out)
        except asyncio.CancelledError:
            if stop is None or not stop.requested:
                raise
        finally:
            clean = stop_in_order([("worker", worker.stop), ("notifier", notifier.stop)])
        return (0 if clean else 1) if code is None else code


def run_until_stopped(main: Coroutine[Any, Any, int], stop: StopSignals) -> int:
    """`asyncio.run(main)`; 0 when a stop signal cancelled it before it had children to stop."""
    try:
        return asyncio.run(main)
    except asyncio.CancelledError:
        if not stop.requested:
            raise
        return 0


def stop_in_order(children: list[tuple[str, Callable[[], bool]]]) -> bool:
    """Stop each child in turn (each within its grace period); True when none had to be killed."""
    clean = True
    for name, stop_one in children:
        started = time.monotonic()
        stopped = stop_one()
        clean = clean and stopped
        log.log(logging.INFO if stopped else logging.WARNING, "child stopped" if stopped else "child killed",
                extra={"fields": {"child": name, "seconds": round(time.monotonic() - started, 2)}})
    return clean


async def _drive(args: argparse.Namespace, settings: KafkaSettings, worker: WorkerProcess,
                 notifier: NotifierProcess, embedded: bool, alerts_out: list[dict[str, Any]] | None) -> int:
    """Ingest `args.files`, then follow the alerts topic, or wait until everything is processed and delivered."""
    bootstrap = settings.bootstrap
    assert bootstrap
    if not await _wait(worker.ready, 120) or worker.process.poll() is not None:
        print("tailwatch run: the worker did not start", file=sys.stderr)
        return 3
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic,
                          idempotent=False if embedded else None, security=settings.security)
    await publisher.start()
    ingestor = Ingestor(publisher, settings.partitions, IngestConfig(lateness_ms=args.lateness_ms),
                        extractor_from(args))
    try:
        for index, path in enumerate(args.files):
            await ingestor.ingest_chunks(source_name(path), chunks_of(path), stream="files",
                                         final=index == len(args.files) - 1)
    finally:
        await publisher.stop()
    print(f"{ingestor.totals.summary_line()} {ingestor.extractor.catalog.stats.summary()}", file=sys.stderr)
    # a damaged input or one with no event: what it held is processed, and the exit status says it was incomplete
    input_status = report_input_problems("run", ingestor.totals)
    if not args.exit_when_done:
        async for message in topic_messages(bootstrap, settings.topic("alerts"), follow=True,
                                                security=settings.security):
            sys.stdout.buffer.write(message.value + b"\n")
            sys.stdout.flush()
        return input_status
    if not await _wait(worker.done, DONE_TIMEOUT_S) or worker.process.poll() is not None:
        print("tailwatch run: the worker stopped before the input was processed", file=sys.stderr)
        return 3
    messages = [message async for message in topic_messages(bootstrap, settings.topic("alerts"),
                                                                           security=settings.security)]
    positions: dict[int, int] = {}
    for message in messages:
        positions[message.partition] = max(positions.get(message.partition, 0), message.offset + 1)
    if not await asyncio.to_thread(notifier.wait_settled, positions, DONE_TIMEOUT_S):
        print("tailwatch run: the notifier stopped before every alert was delivered", file=sys.stderr)
        return 3
    alerts = sorted([orjson.loads(message.value) for message in messages], key=alert_order)
    if alerts_out is not None:
        alerts_out.extend(alerts)
        return input_status
    for alert in alerts:
        sys.stdout.buffer.write(orjson.dumps(alert) + b"\n")
    sys.stdout.flush()
    return input_status


def run(args: argparse.Namespace) -> int:
    kafka = kafka_settings_from(args)
    try:
        load_rules(args.rules)  # fail fast, before anything starts
        load_channels(args.channels)  # the notifier reports missing secrets itself
        check_input_files(args.files)  # an InputError: exit 2 (agents/cli.py)
        with StopSignals() as stop, kafka_bootstrap(kafka.bootstrap) as bootstrap:  # the broker stops last
            settings = kafka.with_bootstrap(bootstrap)
            return run_until_stopped(run_pipeline(args, settings, stop=stop), stop)
    except (RuleFileError, ChannelFileError) as error:
        print(f"tailwatch run: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"tailwatch run: no such file: {error.filename}", file=sys.stderr)
        return 2
    except (KafkaUnavailable, BrokerError) as error:
        print(f"tailwatch run: {error}", file=sys.stderr)
        return 3
