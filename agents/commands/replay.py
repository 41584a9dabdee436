"""`tailwatch replay FILE… [--rules PATH] [--metrics]`: the stream core on saved captures, no broker.
`tailwatch replay --topic [--since TIME] [--until TIME]`: the same backtest over the logs topic's history.

Default: the alert events the rules give — per endpoint and service-wide — as JSON Lines on stdout (the
alerts-topic schema), nothing else on stdout. `--metrics`: the closed endpoint-pane snapshots instead (sorted by
window, service, endpoint); `--service-metrics`: the service-pane snapshots (the metrics.service topic's, sorted by
window, service). One summary line on stderr either way. `--silences FILE` (or `--silences-topic`) marks the
transitions those silences mute, as the live worker does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agents.commands.common import (
    UsageError,
    add_kafka_args,
    add_route_args,
    check_input_files,
    extractor_from,
    kafka_settings_from,
)
from agents.progress import RecordProgress
from agents.sources import report_input_problems, source_name
from agents.split_parse import Batches, record_batches
from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.extract import Extractor
from pipeline.parsing import ParseStats

if TYPE_CHECKING:
    from agents.rules_files import LoadedRules
    from pipeline.pane_store import ClosedPaneEvent
    from pipeline.replay import ReplayStep
    from pipeline.rules.backtest import LogTopicBacktest
    from pipeline.rules.engine import RuleEngine
    from pipeline.rules.silences import SilenceSet
    from pipeline.service import ServicePaneEvent

# The rule machinery (pydantic schemas, YAML, aiokafka) is imported only when alerts are asked for: `replay
# --metrics` starts faster. This is agents.rules_files.DEFAULT_RULES.
DEFAULT_RULES = Path(__file__).resolve().parents[1] / "defaults" / "rules.yaml"

STREAM = "files"  # inputs given together are one stream, as `tailwatch ingest --from` sends them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="FILE", help="captures (plain or .gz), in time order; - stdin")
    parser.add_argument("--topic", action="store_true",
                        help="replay the logs topic's history instead of files (needs --bootstrap or "
                             "TAILWATCH_KAFKA_BOOTSTRAP)")
    parser.add_argument("--since", default=None, metavar="TIME",
                        help="--topic: from the first message published at or after this ISO 8601 time")
    parser.add_argument("--until", default=None, metavar="TIME",
                        help="--topic: up to the first message published at or after this ISO 8601 time")
    parser.add_argument("--silences", default=None, metavar="FILE",
                        help="silences (JSON Lines from `silences list --json`, or a YAML list) to mark transitions")
    parser.add_argument("--silences-topic", action="store_true", help="read the silences from the silences topic")
    parser.add_argument("--metrics", action="store_true", help="print closed-pane metric snapshots, not alerts")
    parser.add_argument("--service-metrics", action="store_true",
                        help="print the service panes' snapshots (every endpoint of a minute merged), not alerts")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="rule file (default: the spec's rules)")
    parser.add_argument("--lateness-ms", type=int, default=DEFAULT_LATENESS_MS, help="allowed lateness")
    parser.add_argument("--no-digests", action="store_true", help="leave the t-digest dicts out of snapshots")
    add_route_args(parser)
    add_kafka_args(parser)


def replay_events(args: argparse.Namespace, totals: ParseStats, engine: RuleEngine | None = None,
                  extractor: Extractor | None = None, service_events: list[ServicePaneEvent] | None = None,
                  progress: RecordProgress | None = None, first: Batches | None = None,
                  ) -> tuple[list[ClosedPaneEvent], list[dict[str, Any]]]:
    """Every closed pane of the inputs, in (start, service, endpoint) order, and the alerts `engine` gives (both
    stages'); the closed service panes go to `service_events`, in (start, service) order. `progress` and `first`
    (the first input's batches, already started by `started_reading`) come from `run`."""
    from pipeline.replay import Replay  # noqa: PLC0415  # imported while a split capture's child parses

    extractor = extractor or extractor_from(args)
    replay = Replay(args.lateness_ms, engine=engine)
    events: list[ClosedPaneEvent] = []
    alerts: list[dict[str, Any]] = []
    services: list[ServicePaneEvent] = [] if service_events is None else service_events

    def closed(step: ReplayStep) -> None:
        events.extend(step.closed)
        services.extend(step.service_closed)
        alerts.extend(step.alerts)

    with RecordProgress(args.inputs, "replay", enabled=False if progress else None) as own:  # stderr, on a terminal
        shown = progress or own
        for number, path in enumerate(args.inputs):  # a large file is parsed on two CPUs: the serial result
            batches = first if number == 0 and first is not None else started_reading(path, extractor, totals,
                                                                                      shown)
            for records in batches:
                closed(replay.step(STREAM, records))
                shown.advance(0, len(records))
    closed(replay.step_end(STREAM))
    events.sort(key=lambda e: (e.start_ms, e.service, e.endpoint))
    services.sort(key=lambda e: (e.start_ms, e.service))
    return events, alerts


def started_reading(path: str, extractor: Extractor, totals: ParseStats, progress: RecordProgress) -> Batches:
    """The batches of one input; a large capture's second half starts parsing in a child now."""
    return record_batches(path, source_name(path), extractor, totals, on_bytes=lambda n: progress.advance(n, 0))


def alert_order(alert: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """The order `replay` and `run` print alerts in: by deciding pane, service, endpoint (a service-wide alert,
    which has none, first), rule, change."""
    labels = alert["labels"]
    return (alert["provenance"]["window_end"], labels["service"], labels.get("endpoint", ""), alert["rule"],
            alert["change"])


async def topic_alerts(args: argparse.Namespace, rules: LoadedRules,
                       silences: SilenceSet) -> tuple[list[dict[str, Any]], LogTopicBacktest]:
    """The alerts the rules give on the logs topic's history (`--since`/`--until`: by publish time)."""
    from agents.log_history import history  # noqa: PLC0415
    from pipeline.rules.backtest import LogTopicBacktest  # noqa: PLC0415
    from pipeline.timestamps import iso_to_ms  # noqa: PLC0415

    settings = kafka_settings_from(args)
    assert settings.bootstrap
    backtest = LogTopicBacktest(rules.compiled, rules.rule_file, rules.sha256, silences, topic=settings.logs_topic)
    since = iso_to_ms(args.since) if args.since else None
    until = iso_to_ms(args.until) if args.until else None
    alerts: list[dict[str, Any]] = []
    async for message in history(settings.bootstrap, settings.logs_topic, since, until,
                                 security=settings.security, on_assigned=backtest.set_partitions):
        alerts += backtest.feed(message.partition, message.value, message.timestamp, message.offset)
    alerts += backtest.end()
    return alerts, backtest


def load_silences(args: argparse.Namespace) -> SilenceSet:
    from agents.alert_silences import SilenceFileError, load_silence_file, read_silences  # noqa: PLC0415
    from pipeline.rules.silences import SilenceSet  # noqa: PLC0415

    records = load_silence_file(args.silences) if args.silences else []
    if args.silences_topic:
        settings = kafka_settings_from(args)
        if not settings.bootstrap:
            raise SilenceFileError("--silences-topic needs --bootstrap or TAILWATCH_KAFKA_BOOTSTRAP")
        import asyncio  # noqa: PLC0415

        records += list(asyncio.run(read_silences(settings)).values())
    return SilenceSet(records)


def _run_topic(args: argparse.Namespace) -> int:
    from agents.rules_files import load_rules  # noqa: PLC0415

    if args.inputs or args.metrics or args.service_metrics:
        print("tailwatch replay: --topic replays the logs topic: give no FILE (and no --metrics or "
              "--service-metrics)", file=sys.stderr)
        return 2
    if not kafka_settings_from(args).bootstrap:
        print("tailwatch replay: --topic needs --bootstrap or TAILWATCH_KAFKA_BOOTSTRAP", file=sys.stderr)
        return 2
    try:
        import asyncio  # noqa: PLC0415

        rules = load_rules(args.rules)
        alerts, backtest = asyncio.run(topic_alerts(args, rules, load_silences(args)))
    except ValueError as error:  # rules, silences, --since/--until (Kafka errors: agents/cli.py, exit 3)
        raise UsageError(str(error)) from error
    out = sys.stdout.buffer
    for alert in sorted(alerts, key=alert_order):
        out.write(orjson.dumps(alert) + b"\n")
    out.flush()
    print(f"records={backtest.records} panes={backtest.panes_closed} late_dropped={backtest.late} "
          f"service_panes={backtest.service_panes_closed} late_endpoint_panes={backtest.late_endpoint_panes} "
          f"alerts={len(alerts)} invalid_batches={backtest.invalid}", file=sys.stderr)
    return 0


def _engine(args: argparse.Namespace) -> RuleEngine:
    """The rules (and silences) of `args`; imported only here, so `--metrics` does not pay for them."""
    from agents.rules_files import load_rules  # noqa: PLC0415
    from pipeline.rules.engine import RuleEngine  # noqa: PLC0415

    rules = load_rules(args.rules)
    return RuleEngine(rules.compiled, rules.rule_file, rules.sha256, load_silences(args))


def run(args: argparse.Namespace) -> int:
    if args.topic:
        return _run_topic(args)
    if not args.inputs:
        print("tailwatch replay: give capture files (or --topic)", file=sys.stderr)
        return 2
    check_input_files(args.inputs)  # errors of the rules, silences and captures: agents/cli.py (exit 2)
    totals = ParseStats()
    extractor = extractor_from(args)
    if args.metrics and args.service_metrics:
        print("tailwatch replay: give --metrics or --service-metrics, not both", file=sys.stderr)
        return 2
    services: list[ServicePaneEvent] = []
    with RecordProgress(args.inputs, "replay") as progress:  # stderr, only on a terminal
        # A large capture's second half starts parsing in a child first; the rules and the stream core are
        # imported and loaded meanwhile (a rule file's error still stops the command before any output).
        first = started_reading(args.inputs[0], extractor, totals, progress)
        engine = None if args.metrics or args.service_metrics else _engine(args)
        events, alerts = replay_events(args, totals, engine, extractor, services, progress, first)
    from pipeline.metrics import encoded_digest, snapshot  # noqa: PLC0415
    from pipeline.service import service_snapshot  # noqa: PLC0415

    out = sys.stdout.buffer
    late = sum(event.pane.late_dropped for event in events)
    if args.metrics or args.service_metrics:
        drop = ("duration_digest", "cpu_digest", "d1_digest") if args.no_digests else ()
        snapshots = ((snapshot(event, encoded_digest) for event in events) if args.metrics
                     else (service_snapshot(event, encoded_digest) for event in services))
        for snap in snapshots:
            for key in drop:
                del snap[key]
            out.write(orjson.dumps(snap) + b"\n")
    else:
        for alert in sorted(alerts, key=alert_order):
            out.write(orjson.dumps(alert) + b"\n")
    out.flush()
    for notice in extractor.catalog.take_notices():
        print(f"tailwatch replay: {notice}", file=sys.stderr)
    print(f"{totals.summary_line()} panes={len(events)} late_dropped={late} service_panes={len(services)} "
          f"alerts={len(alerts)} "
          f"{extractor.catalog.stats.summary()}", file=sys.stderr)
    return report_input_problems("replay", totals)
