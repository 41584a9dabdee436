"""The `tailwatch` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from agents.commands import (
    alerts_cmd,
    broker,
    channels_cmd,
    demo,
    ingest,
    notify_cmd,
    parse,
    probe_cmd,
    replay,
    report,
    rules_cmd,
    run,
    schemas_cmd,
    silences_cmd,
    topics_cmd,
    worker,
)
from agents.logs import setup_logging

COMMANDS: dict[str, tuple[ModuleType, str]] = {
    "parse": (parse, "print normalized records of captures as JSON Lines"),
    "ingest": (ingest, "publish records from wrangler, files or stdin to Kafka"),
    "demo": (demo, "the main job: a generated capture with incidents through the live pipeline"),
    "run": (run, "the whole live pipeline on captures: ingest, Kafka, metrics, rules, alerts"),
    "replay": (replay, "run the metrics core on saved captures, no broker needed"),
    "report": (report, "the spec's analytics, baselines and dashboard widgets from captures or --live"),
    "rules": (rules_cmd, "check rule files, or run rule unit tests"),
    "alerts": (alerts_cmd, "subscribe to the alerts topic"),
    "channels": (channels_cmd, "list the notification channels (secrets masked) or send a test"),
    "notify": (notify_cmd, "deliver alerts to PagerDuty, Slack and e-mail, each transition once per channel"),
    "silences": (silences_cmd, "add, list or expire silences (matchers and a time range) on the silences topic"),
    "schemas": (schemas_cmd, "export or check the JSON Schemas of every message"),
    "worker": (worker, "run the metrics stream worker (Faust) on the logs topic"),
    "broker": (broker, "run the embedded Kafka-compatible broker in the foreground"),
    "probe": (probe_cmd, "uptime probe: check URLs, publish results, alert after consecutive failures"),
    "topics": (topics_cmd, "create (or list) every topic tailwatch uses"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailwatch", description=(
        "Per-endpoint metrics and alerts from `wrangler tail` output, on Kafka."))
    parser.add_argument("--log-level", default=os.environ.get("TAILWATCH_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, service=f"tailwatch-{args.command}")
    runner: Callable[[argparse.Namespace], int] = args.run
    try:
        return runner(args)
    except BrokenPipeError:  # `tailwatch parse … | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
