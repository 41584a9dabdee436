"""`tailwatch notify [--channels PATH]`: the notifier (a Faust worker) on the alerts topic, until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

from agents.commands.common import EXIT_KAFKA, add_kafka_args, add_stop_timeout_arg, exit_status, kafka_settings_from
from agents.embedded_broker import kafka_bootstrap
from agents.notify.config import DEFAULT_CHANNELS, Channel, load_channels
from agents.settings import KafkaSettings
from agents.topics import STATE_TOPIC_CONFIGS, TopicSpec, ensure_topics, is_embedded_broker

log = logging.getLogger("tailwatch.notify")
STARTED = time.monotonic()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_kafka_args(parser)
    parser.add_argument("--channels", default=str(DEFAULT_CHANNELS),
                        help="channel file (default: the spec's five channels, secrets from the environment)")
    parser.add_argument("--app-id", default=None, help="consumer group / app id (default <prefix>-notifier)")
    parser.add_argument("--data-dir", default="./tailwatch-data", help="Faust data directory")
    parser.add_argument("--web-port", type=int, default=None, help="serve /health and /metrics on this port")
    parser.add_argument("--web-bind", default=os.environ.get("TAILWATCH_WEB_BIND", "127.0.0.1"),
                        help="interface the web server binds (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--session-timeout", type=float, default=None,
                        help="consumer group session timeout in s (default 5 on the embedded broker, else 10)")
    add_stop_timeout_arg(parser)


# The deliveries ledger (agents/notify/ledger.py) tombstones what is dead and restates what is live, so a reader
# never needs more than the last restatement (STATE_TOPIC_CONFIGS make compaction run on Apache Kafka).
LEDGER_TOPIC_CONFIGS = STATE_TOPIC_CONFIGS


def notify_topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    return [TopicSpec(settings.topic("alerts"), settings.partitions, settings.replication_factor),
            TopicSpec(settings.topic("deliveries"), settings.partitions, settings.replication_factor,
                      compacted=True, configs=LEDGER_TOPIC_CONFIGS),
            TopicSpec(settings.topic("notify.deadletter"), settings.partitions, settings.replication_factor)]


def report_channels(channels: list[Channel]) -> None:
    """Say at start which channels will be used, and why the others are skipped (one line each)."""
    active = [channel.name for channel in channels if channel.active]
    skipped = {channel.name: channel.missing for channel in channels if not channel.active}
    log.info("channels active", extra={"fields": {"channels": active}})
    if skipped:
        message = "channels skipped" + ("" if active else ": no channel is active, nothing will be sent")
        log.warning(message, extra={"fields": {"skipped": skipped}})


def run(args: argparse.Namespace) -> int:
    channels = load_channels(args.channels)  # before Faust and Kafka; errors: agents/cli.py's exit-code table
    report_channels(channels)
    from agents.notify.ledger import read_ledger  # noqa: PLC0415
    from agents.notify.notifier import Notifier, NotifierSettings, deliveries_topic  # noqa: PLC0415 - Faust

    kafka = kafka_settings_from(args)
    with kafka_bootstrap(kafka.bootstrap) as bootstrap:
        settings = kafka.with_bootstrap(bootstrap)
        asyncio.run(ensure_topics(bootstrap, notify_topic_specs(settings), security=settings.security,
                                  create=settings.create_topics))
        embedded = asyncio.run(is_embedded_broker(bootstrap, security=settings.security))
        reading = time.monotonic()
        ledger = asyncio.run(read_ledger(bootstrap, deliveries_topic(settings), security=settings.security))
        log.info("deliveries ledger read", extra={"fields": {
            "records_read": ledger.records_read, "deliveries": len(ledger.deliveries),
            "alerts": len(ledger.alerts), "seconds": round(time.monotonic() - reading, 2)}})
        notifier = Notifier(NotifierSettings(
            settings, channels, ledger, app_id=args.app_id or f"{settings.topic_prefix}-notifier",
            session_timeout_s=args.session_timeout or (5.0 if embedded else 10.0), data_dir=args.data_dir,
            web_port=args.web_port, web_bind=args.web_bind))
        if args.web_port is not None:
            from agents.notify.web import attach_notifier_web  # noqa: PLC0415 - needs Faust

            attach_notifier_web(notifier)
        return run_notifier(notifier, args.stop_timeout)


def run_notifier(notifier: Any, stop_timeout_s: float) -> int:
    from agents.stop_deadline import bounded_faust_worker  # noqa: PLC0415 - imports Faust

    app = notifier.app

    @app.task  # type: ignore[untyped-decorator]
    async def announce_ready() -> None:
        while not (notifier.started.is_set() and app.consumer.assignment()):
            await asyncio.sleep(0.05)
        log.info("notifier ready", extra={"fields": {
            "seconds": round(time.monotonic() - STARTED, 2),
            "channels": [channel.name for channel in notifier.active]}})

    bounded_faust_worker(app, stop_timeout_s, EXIT_KAFKA, exit_status).execute_from_commandline()
    return 0
