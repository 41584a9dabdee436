"""`tailwatch worker`: run the metrics stream worker (a Faust worker) until stopped."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from agents.alert_silences import silences_topic_spec
from agents.commands.common import (
    EXIT_KAFKA,
    UsageError,
    add_kafka_args,
    add_stop_timeout_arg,
    exit_status,
    kafka_settings_from,
)
from agents.commands.ingest import log_topic_specs
from agents.embedded_broker import kafka_bootstrap
from agents.rules_files import DEFAULT_RULES, load_rules
from agents.settings import KafkaSettings
from agents.stop_deadline import DEFAULT_STOP_TIMEOUT_S, bounded_faust_worker
from agents.topics import STATE_TOPIC_CONFIGS, TopicSpec, ensure_topics, is_embedded_broker
from pipeline.health import HealthLimits
from pipeline.watermarks import DEFAULT_IDLE_PRODUCER_MS

if TYPE_CHECKING:
    from agents.stream_worker import MetricsWorker

log = logging.getLogger("tailwatch.worker")
STARTED = time.monotonic()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_kafka_args(parser)
    parser.add_argument("--store", default="memory://", help="Faust table store: memory:// or rocksdb:// (rocksdict)")
    parser.add_argument("--data-dir", default="./tailwatch-data", help="Faust data directory (tables on disk)")
    add_web_args(parser)
    parser.add_argument("--session-timeout", type=float, default=None,
                        help="consumer group session timeout in s (default 5 on the embedded broker, else 10)")
    parser.add_argument("--app-id", default=None, help="consumer group / app id (default <prefix>-metrics)")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="rule file (default: the spec's rules)")
    parser.add_argument("--idle-producer-ms", type=int, default=DEFAULT_IDLE_PRODUCER_MS,
                        help="a producer (ingest source) silent this long, in Kafka publish time, stops holding its "
                             "partitions' watermark back (default %(default)s; 0: wait for every producer)")
    parser.add_argument("--stall-seconds", type=float, default=30.0,
                        help="a Faust table recovery receiving nothing, or owned partitions with messages never "
                             "delivered, this long is a stall: logged with every task's stack and nudged; twice as "
                             "long again and the worker exits with code 70 for its supervisor to restart it "
                             "(default %(default)s; 0: no watchdog)")
    add_stop_timeout_arg(parser)


def add_web_args(parser: argparse.ArgumentParser) -> None:
    """--web-port and friends: /health and /metrics (agents/health.py); `tailwatch run` passes them on."""
    parser.add_argument("--web-port", type=int, default=None,
                        help="serve /health, /metrics and /dashboard on this port (Faust's own views are off)")
    parser.add_argument("--web-bind", default=os.environ.get("TAILWATCH_WEB_BIND", "127.0.0.1"),
                        help="interface the web server binds (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--max-lag", type=int, default=HealthLimits.max_lag_messages,
                        help="/health: most logs-topic messages the worker may be behind (default %(default)s)")
    parser.add_argument("--max-record-age", type=float, default=HealthLimits.max_record_age_ms / 1000,
                        help="/health: longest time in s without a logs-topic message, 0 for no bound "
                             "(default %(default)s)")


def web_args(args: argparse.Namespace) -> list[str]:
    """The web options of `args` as worker command-line arguments (none when `args` has no --web-port)."""
    if getattr(args, "web_port", None) is None:
        return []
    return ["--web-port", str(args.web_port), "--web-bind", args.web_bind, "--max-lag", str(args.max_lag),
            "--max-record-age", str(args.max_record_age)]


def stream_topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    return [*log_topic_specs(settings),
            TopicSpec(settings.topic("metrics"), settings.partitions, settings.replication_factor),
            TopicSpec(settings.topic("metrics.service"), settings.partitions, settings.replication_factor),
            TopicSpec(settings.topic("alerts"), settings.partitions, settings.replication_factor),
            silences_topic_spec(settings)]


def worker_app_id(settings: KafkaSettings, app_id: str | None = None) -> str:
    return app_id or f"{settings.topic_prefix}-metrics"


def panes_changelog_spec(settings: KafkaSettings, app_id: str | None = None) -> TopicSpec:
    """The changelog of the worker's panes table (Faust names it `<app id>-panes-changelog`), compacted."""
    return TopicSpec(f"{worker_app_id(settings, app_id)}-panes-changelog", settings.partitions,
                     settings.replication_factor, compacted=True, configs=STATE_TOPIC_CONFIGS)


def service_changelog_spec(settings: KafkaSettings, app_id: str | None = None) -> TopicSpec:
    """The changelog of the service stage's table (`<app id>-service-panes-changelog`), compacted."""
    return TopicSpec(f"{worker_app_id(settings, app_id)}-service-panes-changelog", settings.partitions,
                     settings.replication_factor, compacted=True, configs=STATE_TOPIC_CONFIGS)


def worker_topic_specs(settings: KafkaSettings, app_id: str | None = None) -> list[TopicSpec]:
    """Every topic a worker reads or writes, its tables' changelogs included."""
    return [*stream_topic_specs(settings), panes_changelog_spec(settings, app_id),
            service_changelog_spec(settings, app_id)]


def run(args: argparse.Namespace) -> int:
    check_store(args.store)
    rules = load_rules(args.rules)  # before Kafka and Faust; errors: agents/cli.py's exit-code table
    from agents.stream_worker import MetricsWorker  # noqa: PLC0415 - Faust is slow to import
    from agents.worker_state import WorkerSettings  # noqa: PLC0415 - imports Faust too

    kafka = kafka_settings_from(args)
    with kafka_bootstrap(kafka.bootstrap) as bootstrap:
        settings = kafka.with_bootstrap(bootstrap)
        asyncio.run(ensure_topics(bootstrap, worker_topic_specs(settings, args.app_id), security=settings.security,
                                  create=settings.create_topics))
        # Tansu answers the first JoinGroup after half the session timeout: keep it short there. Apache Kafka
        # refuses sessions under group.min.session.timeout.ms (6 s by default).
        embedded = asyncio.run(is_embedded_broker(bootstrap, security=settings.security))
        session = args.session_timeout or (5.0 if embedded else 10.0)
        worker = MetricsWorker(WorkerSettings(settings, app_id=worker_app_id(settings, args.app_id), store=args.store,
                                              data_dir=args.data_dir, web_port=args.web_port,
                                              web_bind=args.web_bind, session_timeout_s=session,
                                              rules=rules, idle_producer_ms=args.idle_producer_ms))
        if args.web_port is not None:
            from agents.health import attach_web  # noqa: PLC0415 - needs Faust

            attach_web(worker, HealthLimits(args.max_lag, int(args.max_record_age * 1000)), rules)
        return run_worker(worker, args.stall_seconds, args.stop_timeout)


def check_store(store: str) -> None:
    """`rocksdb://` needs rocksdict, an optional dependency (`pip install 'tailwatch[rocksdb]'`)."""
    if store.startswith("rocksdb:") and importlib.util.find_spec("rocksdict") is None:
        raise UsageError("--store rocksdb:// needs rocksdict, which is not installed: "
                         "pip install 'tailwatch[rocksdb]' (or use --store memory://)")
    if not store.startswith(("rocksdb:", "memory:")):
        raise UsageError(f"--store {store}: give memory:// or rocksdb://")


def run_worker(worker: MetricsWorker, stall_s: float = 30.0, stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> int:
    from agents.stall_watchdog import StallWatchdog, task_stacks  # noqa: PLC0415

    app = worker.app

    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]

    if stall_s > 0:
        watchdog = StallWatchdog(worker, stall_s=stall_s, exit_after_s=2 * stall_s)
        app.timer(min(5.0, stall_s / 3))(watchdog.check)

    @app.task  # type: ignore[untyped-decorator]
    async def dump_tasks_on_signal() -> None:
        """SIGUSR2 logs what every asyncio task of the worker is waiting on (diagnosing a stalled worker)."""
        import signal  # noqa: PLC0415

        def dump() -> None:
            log.warning("tasks", extra={"fields": {"tasks": task_stacks(app)}})

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)

    @app.task  # type: ignore[untyped-decorator]
    async def announce_ready() -> None:
        while not (recovery.completed.is_set() and app.consumer.assignment()):
            await asyncio.sleep(0.05)
        # Long-lived framework objects need no more cycle scans, and batches allocate many short-lived dicts
        # that reference counting frees: collect young objects less often.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        log.info("worker ready", extra={"fields": {"seconds": round(time.monotonic() - STARTED, 2),
                                                   "partitions": sorted(tp.partition for tp in
                                                                        app.consumer.assignment())}})

    async def checkpoint(faust_worker: Any) -> None:  # SIGTERM or SIGINT: before the app (consumer, table) stops
        if faust_worker.crash_reason is None and app.crash_reason is None:  # not after a crash: the state may be torn
            try:
                await worker.checkpoint_on_stop()
            except Exception:  # the stop goes on: what is not checkpointed is read again after a restart
                log.exception("checkpoint on stop failed")

    faust_worker = bounded_faust_worker(app, stop_timeout_s, EXIT_KAFKA, exit_status, before_stop=checkpoint)
    faust_worker.execute_from_commandline()
    return 0
