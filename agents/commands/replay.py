"""`tailwatch replay FILE… [--rules PATH] [--metrics]`: the stream core on saved captures, no broker.

Default: the alert events the rules give, as JSON Lines on stdout (the alerts-topic schema), nothing else on
stdout. `--metrics`: the closed-pane snapshots instead (sorted by window, service, endpoint). One summary line on
stderr either way."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agents.commands.common import add_route_args, extractor_from
from agents.sources import source_name
from agents.split_parse import record_batches
from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.metrics import snapshot
from pipeline.pane_store import ClosedPaneEvent
from pipeline.parsing import ParseStats
from pipeline.replay import Replay

if TYPE_CHECKING:
    from pipeline.rules.engine import RuleEngine

DEFAULT_RULES = Path(__file__).resolve().parents[1] / "defaults" / "rules.yaml"  # agents.rules_files' default

STREAM = "files"  # inputs given together are one stream, as `tailwatch ingest --from` sends them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="captures (plain or .gz), in time order; - stdin")
    parser.add_argument("--metrics", action="store_true", help="print closed-pane metric snapshots, not alerts")
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="rule file (default: the spec's rules)")
    parser.add_argument("--lateness-ms", type=int, default=DEFAULT_LATENESS_MS, help="allowed lateness")
    parser.add_argument("--no-digests", action="store_true", help="leave the t-digest dicts out of snapshots")
    add_route_args(parser)


def replay_events(args: argparse.Namespace, totals: ParseStats,
                  engine: RuleEngine | None = None) -> tuple[list[ClosedPaneEvent], list[dict[str, Any]]]:
    """Every closed pane of the inputs, in (start, service, endpoint) order, and the alerts `engine` gives."""
    extractor = extractor_from(args)
    replay = Replay(args.lateness_ms)
    events: list[ClosedPaneEvent] = []
    alerts: list[dict[str, Any]] = []

    def closed(new: list[ClosedPaneEvent]) -> None:
        events.extend(new)
        if engine is not None:
            alerts.extend(engine.on_panes_closed(new, replay.store))

    for path in args.inputs:  # a large file is parsed on two CPUs, with the serial reader's result
        for records in record_batches(path, source_name(path), extractor, totals):
            closed(replay.feed(STREAM, records))
    closed(replay.end(STREAM))
    events.sort(key=lambda e: (e.start_ms, e.service, e.endpoint))
    return events, alerts


def alert_order(alert: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """The order `replay` and `run` print alerts in: by deciding pane, endpoint, rule, change."""
    labels = alert["labels"]
    return (alert["provenance"]["window_end"], labels["service"], labels["endpoint"], alert["rule"],
            alert["change"])


def run(args: argparse.Namespace) -> int:
    totals = ParseStats()
    engine = None
    if not args.metrics:  # the rule machinery (pydantic schemas, YAML) loads only when alerts are asked for
        from agents.rules_files import RuleFileError, load_rules  # noqa: PLC0415
        from pipeline.rules.engine import RuleEngine  # noqa: PLC0415

        try:
            rules = load_rules(args.rules)
        except RuleFileError as error:
            print(f"tailwatch replay: {error}", file=sys.stderr)
            return 2
        except FileNotFoundError as error:
            print(f"tailwatch replay: no such file: {error.filename}", file=sys.stderr)
            return 2
        engine = RuleEngine(rules.compiled, rules.rule_file, rules.sha256)
    try:
        events, alerts = replay_events(args, totals, engine)
    except FileNotFoundError as error:
        print(f"tailwatch replay: no such file: {error.filename}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    late = sum(event.pane.late_dropped for event in events)
    if args.metrics:
        drop = ("duration_digest", "cpu_digest", "d1_digest") if args.no_digests else ()
        for event in events:
            snap = snapshot(event)
            for key in drop:
                del snap[key]
            out.write(orjson.dumps(snap) + b"\n")
    else:
        for alert in sorted(alerts, key=alert_order):
            out.write(orjson.dumps(alert) + b"\n")
    out.flush()
    print(f"{totals.summary_line()} panes={len(events)} late_dropped={late} alerts={len(alerts)}", file=sys.stderr)
    return 0
