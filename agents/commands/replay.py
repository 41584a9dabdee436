"""`tailwatch replay FILE… --metrics`: the stream core on saved captures, no broker: closed-pane snapshots as
JSON Lines on stdout (sorted by window, service, endpoint), one summary line on stderr."""

from __future__ import annotations

import argparse
import sys

import orjson

from agents.commands.common import add_route_args, extractor_from
from agents.sources import chunks_of, source_name
from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.metrics import snapshot
from pipeline.pane_store import ClosedPaneEvent
from pipeline.parsing import LogParser, ParseStats
from pipeline.replay import Replay

STREAM = "files"  # inputs given together are one stream, as `tailwatch ingest --from` sends them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="captures (plain or .gz), in time order; - stdin")
    parser.add_argument("--metrics", action="store_true", help="print closed-pane metric snapshots")
    parser.add_argument("--lateness-ms", type=int, default=DEFAULT_LATENESS_MS, help="allowed lateness")
    parser.add_argument("--no-digests", action="store_true", help="leave the t-digest dicts out of snapshots")
    add_route_args(parser)


def replay_events(args: argparse.Namespace, totals: ParseStats) -> list[ClosedPaneEvent]:
    extractor = extractor_from(args)
    replay = Replay(args.lateness_ms)
    events: list[ClosedPaneEvent] = []
    for path in args.inputs:
        parser = LogParser(source_name(path), extractor)
        for chunk in chunks_of(path):
            events.extend(replay.feed(STREAM, parser.feed(chunk).records))
        events.extend(replay.feed(STREAM, parser.finish().records))
        totals.merge(parser.stats)
    events.extend(replay.end(STREAM))
    events.sort(key=lambda e: (e.start_ms, e.service, e.endpoint))
    return events


def run(args: argparse.Namespace) -> int:
    if not args.metrics:
        print("tailwatch replay: alert rules are not built yet; use --metrics", file=sys.stderr)
        return 2
    totals = ParseStats()
    try:
        events = replay_events(args, totals)
    except FileNotFoundError as error:
        print(f"tailwatch replay: no such file: {error.filename}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    drop = ("duration_digest", "cpu_digest", "d1_digest") if args.no_digests else ()
    for event in events:
        snap = snapshot(event)
        for key in drop:
            del snap[key]
        out.write(orjson.dumps(snap) + b"\n")
    out.flush()
    late = sum(event.pane.late_dropped for event in events)
    print(f"{totals.summary_line()} panes={len(events)} late_dropped={late}", file=sys.stderr)
    return 0
