"""`tailwatch report FILE… | --live`: the spec's analytics, Performance Baselines and dashboard widgets.

From captures: the records are counted (top templates, error messages, build-spec accesses), run through the
stream core (the same closed-pane snapshots the live workers send) and through the rules (the alert timeline).
`--live` reads the metrics, service metrics and alerts topics instead, and the logs topic for the record-level
sections. Output:
terminal tables (rich) on stdout, or `--json` (one object; keys in README), and with `--html FILE` the
self-contained page the worker serves at /dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from agents.commands.common import (
    UsageError,
    add_kafka_args,
    add_route_args,
    check_input_files,
    extractor_from,
    kafka_settings_from,
)
from agents.kafka_security import KafkaSecurity
from agents.progress import RecordProgress
from agents.report_tables import render_tables
from agents.rules_files import DEFAULT_RULES, load_rules
from agents.sources import chunks_of, damage_of, report_input_problems, source_name
from agents.topic_reader import topic_messages
from agents.topic_values import decode_alert, decode_endpoint_snapshot, decode_log_batch, decode_service_snapshot
from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.parsing import LogParser, ParseStats
from pipeline.report.build import build_report
from pipeline.report.capture import CaptureReport
from pipeline.report.html import render_html
from pipeline.report.records import RecordTotals
from pipeline.report.services import ServiceTotals
from pipeline.report.snapshots import PaneTotals, SnapshotStore
from pipeline.rules.engine import RuleEngine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="FILE", help="captures (plain or .gz), in time order; - stdin")
    parser.add_argument("--live", action="store_true",
                        help="read the metrics, service metrics and alerts topics instead of files")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object, not tables")
    parser.add_argument("--html", metavar="FILE", help="also write the self-contained HTML report here")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="rules for the alert timeline (files only)")
    parser.add_argument("--no-rules", action="store_true", help="no alert timeline (files only)")
    parser.add_argument("--top", type=int, default=10, help="rows of the top-N tables (default 10)")
    parser.add_argument("--lateness-ms", type=int, default=DEFAULT_LATENESS_MS, help="allowed lateness")
    parser.add_argument("--no-records", action="store_true",
                        help="--live: skip the logs topic (no top templates, error messages, build-spec accesses)")
    parser.add_argument("--idle-s", type=float, default=2.0,
                        help="--live: stop reading a topic after this many seconds without a new message")
    add_route_args(parser)
    add_kafka_args(parser)


def report_from_files(args: argparse.Namespace, totals: ParseStats) -> dict[str, Any]:
    rules = None if args.no_rules else load_rules(args.rules)
    engine = None if rules is None else RuleEngine(rules.compiled, rules.rule_file, rules.sha256)
    extractor = extractor_from(args)
    capture = CaptureReport(engine, args.lateness_ms)
    with RecordProgress(args.inputs, "report") as progress:
        for path in args.inputs:
            parser = LogParser(source_name(path), extractor)
            chunks = chunks_of(path)
            for chunk in chunks:
                batch = parser.feed(chunk).records
                capture.feed(batch)
                progress.advance(len(chunk), len(batch))
            if (damage := damage_of(chunks)) is not None:  # the records before the damage stand
                parser.input_damaged(damage.offset, damage.reason)
            capture.feed(parser.finish().records)
            totals.merge(parser.stats)
    capture.end()
    return capture.report(args.top, [source_name(path) for path in args.inputs])


SERVICE_TOPIC_WAIT_S = 5.0  # the metrics topic was just read: a missing service topic is missing, not slow


async def _read_snapshots(bootstrap: str, topic: str, idle_s: float, security: KafkaSecurity,
                          decode: Callable[[bytes | None], dict[str, Any] | str | None],
                          into: SnapshotStore[Any], timeout_s: float = 60.0) -> int:
    """Every snapshot of `topic` into `into`, in batches; returns how many values were invalid (a `str` from
    `decode`, a service-stage record on the metrics topic, is skipped and not counted)."""
    invalid = 0
    batch: list[dict[str, Any]] = []
    async for message in topic_messages(bootstrap, topic, idle_s=idle_s, timeout_s=timeout_s, security=security):
        value = decode(message.value)
        if value is None:
            invalid += 1
        elif isinstance(value, dict):
            batch.append(value)
            if len(batch) >= 500:
                into.add(batch)
                batch = []
    into.add(batch)
    return invalid


async def read_live(bootstrap: str, topics: dict[str, str], idle_s: float, top: int,
                    with_records: bool, security: KafkaSecurity) -> dict[str, Any]:
    """The report from the metrics, service metrics and alerts topics, and with `with_records` the record-level
    sections from the logs topic (batches delivered twice are counted once, by producer, partition and batch
    number). Without a service metrics topic (no service stage ran) the service sections are null."""
    panes = PaneTotals()
    skipped = await _read_snapshots(bootstrap, topics["metrics"], idle_s, security, decode_endpoint_snapshot, panes)
    service_panes = ServiceTotals()
    services: ServiceTotals | None = service_panes
    try:
        skipped += await _read_snapshots(bootstrap, topics["metrics.service"], idle_s, security,
                                         decode_service_snapshot, service_panes, SERVICE_TOPIC_WAIT_S)
    except TimeoutError:
        services = None
        print(f"tailwatch report: no topic {topics['metrics.service']}: no service rows (is the service stage "
              "running?)", file=sys.stderr)
    alerts = []
    async for message in topic_messages(bootstrap, topics["alerts"], idle_s=idle_s, security=security):
        value = decode_alert(message.value)
        if value is None:
            skipped += 1
        else:
            alerts.append(value)
    records = None
    if with_records:
        records = RecordTotals()
        seen: set[tuple[str, int, int]] = set()
        async for message in topic_messages(bootstrap, topics["logs"], idle_s=idle_s, security=security):
            decoded = decode_log_batch(message.value)
            if decoded is None:
                skipped += 1
            elif decoded[0] not in seen:
                seen.add(decoded[0])
                records.add(decoded[1])
    if skipped:
        print(f"tailwatch report: skipped {skipped} messages that do not match their topic's schema",
              file=sys.stderr)
    return build_report(panes, records, alerts, "live", top, list(topics.values()), skipped, services)


def run(args: argparse.Namespace) -> int:
    if args.live == bool(args.inputs):
        raise UsageError("give capture FILEs or --live (not both)")
    totals = ParseStats()  # errors (inputs, rules, Kafka): agents/cli.py turns them into the exit-code table
    if args.live:
        settings = kafka_settings_from(args)
        if not settings.bootstrap:
            raise UsageError("--live needs --bootstrap or TAILWATCH_KAFKA_BOOTSTRAP")
        topics = {name: settings.topic(name) for name in ("metrics", "metrics.service", "alerts", "logs")}
        report = asyncio.run(read_live(settings.bootstrap, topics, args.idle_s, args.top, not args.no_records,
                                     settings.security))
    else:
        check_input_files(args.inputs)
        report = report_from_files(args, totals)
    if args.html:
        Path(args.html).write_text(render_html(report), encoding="utf-8")
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report) + b"\n")
        sys.stdout.flush()
    else:
        render_tables(report, Console(width=None if sys.stdout.isatty() else 160))
    summary = totals.summary_line() + " " if not args.live else ""
    print(f"{summary}panes={report['totals']['panes']} alerts="
          f"{'-' if report['alerts'] is None else report['alerts']['events']}"
          + (f" html={args.html}" if args.html else ""), file=sys.stderr)
    return report_input_problems("report", totals)
