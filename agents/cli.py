"""The `tailwatch` command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from agents.logs import setup_logging
from agents.parent_watch import watch_parent

# Each command's module (`agents.commands.<module>`), imported only when that command runs (start-up time: the
# modules pull in pydantic schemas, aiokafka, Faust …) or when the whole help is asked for.
COMMANDS: dict[str, tuple[str, str]] = {
    "parse": ("parse", "print normalized records of captures as JSON Lines"),
    "ingest": ("ingest", "publish records from wrangler, files or stdin to Kafka"),
    "demo": ("demo", "the main job: a generated capture with incidents through the live pipeline"),
    "run": ("run", "the whole live pipeline on captures: ingest, Kafka, metrics, rules, alerts"),
    "replay": ("replay", "backtest the rules on saved captures or the logs topic: alert events (--metrics: panes)"),
    "report": ("report", "the spec's analytics, baselines and dashboard widgets from captures or --live"),
    "rules": ("rules_cmd", "check rule files, or run rule unit tests (log fixtures and expected transitions)"),
    "alerts": ("alerts_cmd", "subscribe to the alerts topic"),
    "silences": ("silences_cmd", "add, list or expire silences (matchers and a time range) on the silences topic"),
    "notify": ("notify_cmd", "deliver alerts to PagerDuty, Slack and e-mail, each transition once per channel"),
    "channels": ("channels_cmd", "list the notification channels (secrets masked) or send a test"),
    "schemas": ("schemas_cmd", "export or check the JSON Schemas of every message"),
    "worker": ("worker", "run the metrics stream worker (Faust) on the logs topic"),
    "broker": ("broker", "run the embedded Kafka-compatible broker in the foreground"),
    "probe": ("probe_cmd", "uptime probe: check URLs, publish results, alert after consecutive failures"),
    "topics": ("topics_cmd", "create (or list) every topic tailwatch uses"),
    "config": ("config_cmd", "show the effective configuration (secrets masked, each value's source) or check it"),
}


def command_in(argv: Sequence[str]) -> str | None:
    """The command named in `argv` (after the top-level options), if any."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--log-level":
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command's module is imported (the others keep their names and help)."""
    parser = argparse.ArgumentParser(prog="tailwatch", description=(
        "Per-endpoint metrics and alerts from `wrangler tail` output, on Kafka."))
    parser.add_argument("--log-level", default=os.environ.get("TAILWATCH_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(f"agents.commands.{module_name}")
            module.add_arguments(command)
            command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_in(argv)).parse_args(argv)
    setup_logging(args.log_level, service=f"tailwatch-{args.command}")
    watch_parent()  # a child of another tailwatch command stops when that one is gone
    runner: Callable[[argparse.Namespace], int] = args.run
    if getattr(args, "actions", None) and args.action is None:  # `tailwatch rules`: its actions, a usage error
        from agents.commands.common import EXIT_USAGE, actions_text  # noqa: PLC0415

        print(actions_text(args.command, args.actions), file=sys.stderr)
        return EXIT_USAGE
    try:
        return runner(args)
    except BrokenPipeError:  # `tailwatch parse … | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130  # EXIT_INTERRUPTED
    except Exception as error:
        return report_error(args.command, error)


def report_error(command: str, error: Exception) -> int:
    """The exit code of `error` (the table in agents/commands/common.py), with its one-line reason on stderr; an
    error no user can cause is a bug: its traceback, and a line saying so."""
    from agents.commands.common import EXIT_BUG, exit_code_of  # noqa: PLC0415 - only on an error

    known = exit_code_of(error)
    if known is None:
        traceback.print_exc()
        print(f"tailwatch {command}: internal error (a bug in tailwatch; please report it with the traceback "
              f"above): {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_BUG
    code, reason = known
    print(f"tailwatch {command}: {reason}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
