"""`tailwatch demo`: the main job on the embedded broker — a generated 90-minute capture with six incidents runs
through the whole live pipeline, and the alerts it raised are shown as a timeline.

Its notifier runs with the channels' secrets emptied, so the generated incidents page no one. The screen is for
a person: the JSON log lines of the demo, its worker and its notifier go to a log file
(`--log-file`, default `~/.local/state/tailwatch/demo.log`, rewritten each run), whose path the demo prints."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agents.commands.run import run_pipeline, run_until_stopped
from agents.embedded_broker import BrokerError, kafka_bootstrap
from agents.logs import logs_to_file
from agents.notify.config import DEFAULT_CHANNELS, load_channels
from agents.rules_files import DEFAULT_RULES, load_rules
from agents.settings import KafkaSettings
from agents.stop_signals import StopSignals
from agents.topics import KafkaUnavailable
from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.synthetic import DEMO_INCIDENTS, DEMO_START_MS, demo_events, render_capture

SPEC_RULES = ("factory-service-down", "d1-connection-failures", "factory-high-error-rate", "factory-slow-responses",
              "d1-quota-warning", "factory-traffic-spike", "factory-404-spike")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated traffic")
    parser.add_argument("--keep", type=Path, default=None, metavar="FILE",
                        help="also save the generated capture here (to try parse, replay, report on)")
    parser.add_argument("--log-file", type=Path, default=None, metavar="FILE",
                        help=f"where the JSON log lines go (default: {default_log_file()}, rewritten each run)")
    parser.add_argument("--all", action="store_true", help="show the Key Metrics tier alerts too, not just counts")


def default_log_file() -> Path:
    """`$XDG_STATE_HOME/tailwatch/demo.log` (`~/.local/state/…`), else in the temp directory (no home)."""
    state = os.environ.get("XDG_STATE_HOME")
    if not state:
        try:
            state = str(Path.home() / ".local" / "state")
        except RuntimeError:
            state = tempfile.gettempdir()
    return Path(state) / "tailwatch" / "demo.log"


def channel_secrets_emptied() -> dict[str, str]:
    """The demo notifies no one, whatever the environment holds: every secret the default channel file reads
    (and `SMTP_HOST`), empty, for its notifier's environment."""
    names = {"SMTP_HOST"}
    for channel in load_channels(DEFAULT_CHANNELS, env={}):
        variable = getattr(channel.spec, "integration_key", None) or getattr(channel.spec, "webhook_url", None)
        if isinstance(variable, str):
            names.add(variable.removeprefix("$"))
    return dict.fromkeys(sorted(names), "")


def write_capture(path: Path, seed: int) -> int:
    count = 0
    with path.open("wb") as out:
        for chunk in render_capture(demo_events(seed)):
            out.write(chunk)
            count += 1
    return count


def show(alerts: list[dict[str, Any]], everything: bool) -> None:
    print(f"\n{'time':5}  {'change':11} {'severity':8} {'rule':24} {'endpoint':42} value vs threshold")
    shown = [a for a in alerts if everything or a["rule"] in SPEC_RULES]
    for alert in shown:
        at = (alert["ends_at"] or alert["provenance"]["window_end"])[11:16]
        value, threshold = alert["value"], alert["threshold"]
        figures = "" if value is None else f"{value:g} vs {threshold:g}"
        muted = "  (inhibited by " + ", ".join(alert["inhibited_by"]) + ")" if alert["inhibited_by"] else ""
        labels = alert["labels"]
        where = labels.get("endpoint") or f"{labels['service']} (all endpoints)"  # a service-wide rule has none
        print(f"{at:5}  {alert['change']:11} {alert['severity']:8} {alert['rule']:24} {where:42} {figures}{muted}")
    if not everything:
        others = Counter(a["rule"] for a in alerts if a["rule"] not in SPEC_RULES)
        if others:
            print("\nKey Metrics tier alerts (tailwatch demo --all shows them): "
                  + ", ".join(f"{rule} {count}" for rule, count in sorted(others.items())))


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    rules = load_rules(DEFAULT_RULES)
    log_file: Path = args.log_file or default_log_file()
    log_file.parent.mkdir(parents=True, exist_ok=True)  # an OSError: exit 2 with its reason (agents/cli.py)
    try:
        with logs_to_file(log_file):
            alerts, code, stopped = demo_pipeline(args, rules.path)
    except (KafkaUnavailable, BrokerError) as error:
        print(f"tailwatch demo: {error} (log: {log_file})", file=sys.stderr)
        return 3
    if code or stopped:  # stopped by a signal: 0 after a clean stop, and no timeline
        if code:
            print(f"tailwatch demo: failed; its log: {log_file}", file=sys.stderr)
        return code
    show(alerts, args.all)
    print(f"\n{len(alerts)} alert transitions on the alerts topic in {time.monotonic() - started:.0f} s. "
          f"`tailwatch replay <capture>` gives the same ones offline (save the capture with --keep FILE).")
    print(f"The log lines of the demo, its worker and its notifier (JSON): {log_file}")
    return 0


def demo_pipeline(args: argparse.Namespace, rules: Path) -> tuple[list[dict[str, Any]], int, bool]:
    """Generate the capture and run it through the live pipeline: (the alerts, the exit code, stopped by a
    signal)."""
    print("tailwatch demo: 90 minutes of generated wrangler tail output, with these incidents:")
    for incident in DEMO_INCIDENTS:
        start = (incident.start_ms - DEMO_START_MS) // 60_000
        end = (incident.end_ms - DEMO_START_MS) // 60_000
        print(f"  minutes {start:2}-{end:2}  {incident.kind:12} {incident.endpoint}")
    with StopSignals() as stop, tempfile.TemporaryDirectory(prefix="tailwatch-demo-") as scratch:
        capture = args.keep or Path(scratch) / "demo-capture.json"
        events = write_capture(capture, args.seed)
        where = f"written to {capture}" if args.keep else "generated (--keep FILE saves them)"
        print(f"\n{events} events {where}; running ingest → Kafka (embedded) → worker → notifier → alerts …",
              flush=True)
        run_args = argparse.Namespace(files=[str(capture)], exit_when_done=True, rules=str(rules),
                                      lateness_ms=DEFAULT_LATENESS_MS, route=[])
        alerts: list[dict[str, Any]] = []
        with kafka_bootstrap(None) as bootstrap:  # the broker stops after the worker and the notifier
            settings = KafkaSettings(bootstrap, "demo", 4, 1)
            code = run_until_stopped(run_pipeline(run_args, settings, alerts, stop, channel_secrets_emptied()),
                                     stop)
        return alerts, code, stop.requested
