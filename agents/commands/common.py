"""Arguments and helpers several subcommands share, and the exit codes of every command."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import zlib
from dataclasses import replace
from typing import TYPE_CHECKING

from agents.kafka_security import KafkaSecurityError
from agents.settings import BOOTSTRAP_ENV, KafkaSettings
from agents.stop_deadline import DEFAULT_STOP_TIMEOUT_S
from pipeline.endpoint_catalog import DEFAULT_MAX_ENDPOINTS, EndpointCatalog
from pipeline.extract import Extractor
from pipeline.routes import DEFAULT_ROUTE_TEMPLATES, RouteTable

if TYPE_CHECKING:
    pass


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < 1e9:  # also NaN and infinity
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds (and finite): {text}")
    return value


def add_route_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--route", action="append", default=[], metavar="TEMPLATE",
                        help="a route template such as /api/items/:id (repeatable; added to the spec's defaults); "
                             "a template's key is always its own endpoint")
    parser.add_argument("--max-endpoints", type=_positive, default=DEFAULT_MAX_ENDPOINTS, metavar="N",
                        help="learned endpoint keys per service at most; further new ones fold into <overflow> "
                             f"(default {DEFAULT_MAX_ENDPOINTS})")


def extractor_from(args: argparse.Namespace) -> Extractor:
    routes = RouteTable([*DEFAULT_ROUTE_TEMPLATES, *args.route])
    return Extractor(routes, EndpointCatalog(routes.templates,
                                             getattr(args, "max_endpoints", DEFAULT_MAX_ENDPOINTS)))


def add_action(parser: argparse.ArgumentParser, actions: dict[str, str]) -> None:
    """The ACTION positional of a command with subcommands (`rules check`); without one, the command lists them
    (agents/cli.py) instead of an argparse error about missing arguments."""
    parser.add_argument("action", nargs="?", choices=list(actions), metavar="ACTION",
                        help="; ".join(f"{name}: {text}" for name, text in actions.items()))
    parser.set_defaults(actions=actions)


def actions_text(command: str, actions: dict[str, str]) -> str:
    width = max(len(name) for name in actions)
    return f"tailwatch {command}: give an action:\n" + "\n".join(
        f"  tailwatch {command} {name:{width}}  {text}" for name, text in actions.items())


def add_stop_timeout_arg(parser: argparse.ArgumentParser) -> None:
    """--stop-timeout of the commands that run a Faust worker (`worker`, `notify`): `agents/stop_deadline.py`."""
    parser.add_argument("--stop-timeout", type=_seconds, default=DEFAULT_STOP_TIMEOUT_S, metavar="SECONDS",
                        help="the longest an orderly stop (SIGTERM, Ctrl-C) may take; past it, as when Kafka cannot "
                             "be reached, the process exits with code 3 (default %(default)s; 0: no bound)")


def add_kafka_args(parser: argparse.ArgumentParser, config_flag: str = "--config") -> None:
    """The Kafka flags of every command that talks to Kafka; `config_flag` names the tailwatch.yaml flag (`probe`
    has its own --config, so it uses --tailwatch-config)."""
    parser.add_argument(config_flag, dest="tailwatch_config", default=None, metavar="FILE",
                        help="tailwatch.yaml (default $TAILWATCH_CONFIG): Kafka address, security, topics")
    parser.add_argument("--no-create-topics", dest="create_topics", action="store_const", const=False, default=None,
                        help="use existing topics only and name the missing ones (a cluster where tailwatch may "
                             "not create topics)")
    parser.add_argument("--bootstrap", default=None,
                        help=f"Kafka bootstrap address (default ${BOOTSTRAP_ENV}; unset: start the embedded broker)")
    parser.add_argument("--topic-prefix", default=None, help="topic name prefix (default tailwatch)")
    parser.add_argument("--partitions", type=int, default=None, help="partitions of created topics (default 4)")


def kafka_settings_from(args: argparse.Namespace) -> KafkaSettings:
    """The Kafka settings of a command: defaults < tailwatch.yaml < environment < flags (agents/config_file.py),
    with the security settings checked (certificates readable) before anything starts; a ConfigError exits 2."""
    from agents.config_file import config_path, load_config  # noqa: PLC0415 - only commands that talk to Kafka

    path = config_path(getattr(args, "tailwatch_config", None))
    flags = {"kafka.bootstrap": ("--bootstrap", getattr(args, "bootstrap", None)),
             "kafka.topic_prefix": ("--topic-prefix", getattr(args, "topic_prefix", None)),
             "kafka.partitions": ("--partitions", getattr(args, "partitions", None)),
             "kafka.create_topics": ("--no-create-topics", getattr(args, "create_topics", None))}
    settings = load_config(path, flags=flags).kafka_settings()
    if settings.bootstrap is None and settings.security.protocol != "PLAINTEXT":
        raise UsageError(f"kafka.security.protocol is {settings.security.protocol} but no kafka.bootstrap is set "
                         f"(--bootstrap or {BOOTSTRAP_ENV}); the embedded broker speaks PLAINTEXT only")
    try:
        settings.security.ssl_context()  # an unreadable CA or client certificate: exit 2 now, not at connect time
    except KafkaSecurityError as error:
        raise UsageError(f"kafka.security: {error}") from None
    return replace(settings, config_file=str(path.resolve()) if path is not None else None)


# ---- exit codes: the same table for every command (README "Exit codes"); agents/cli.py's main applies it ----

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a check command found problems: rules check/test, schemas check, channels test
EXIT_USAGE = 2  # bad flags, or an input that is missing, unreadable, damaged or invalid (captures, rules, …)
EXIT_KAFKA = 3  # Kafka (or the embedded broker) cannot be reached, or the pipeline a command runs stopped
EXIT_BUG = 4  # an unexpected internal error: a bug in tailwatch (the traceback is shown)
EXIT_INTERRUPTED = 130  # Ctrl-C


class CommandError(Exception):
    """An error the user can fix: one line `tailwatch <command>: <message>` on stderr, exit status `code`."""

    code = EXIT_USAGE


class UsageError(CommandError):
    code = EXIT_USAGE


class InputError(CommandError):
    """An input (capture, rule, silence, channel or probe file) that is missing, unreadable, damaged or invalid."""

    code = EXIT_USAGE


class CheckFailed(CommandError):
    code = EXIT_CHECK_FAILED


# User-facing errors raised by other modules, by "module.Class". A class is checked only when its module is
# already imported (an error cannot come from a module that was never loaded), so this costs no imports.
USER_ERRORS: dict[str, int] = {
    "agents.topics.KafkaUnavailable": EXIT_KAFKA,
    "agents.topics.TopicsUnusable": EXIT_KAFKA,
    "agents.config_file.ConfigError": EXIT_USAGE,
    "agents.kafka_security.KafkaSecurityError": EXIT_USAGE,
    "agents.embedded_broker.BrokerError": EXIT_KAFKA,
    "aiokafka.errors.KafkaError": EXIT_KAFKA,
    "agents.rules_files.RuleFileError": EXIT_USAGE,
    "agents.rule_tests.RuleTestFileError": EXIT_USAGE,
    "agents.alert_silences.SilenceFileError": EXIT_USAGE,
    "agents.notify.config.ChannelFileError": EXIT_USAGE,
    "agents.commands.probe_cmd.ProbeConfigError": EXIT_USAGE,
    "pipeline.rules.silences.MatcherError": EXIT_USAGE,
}


def _registered(error: BaseException) -> int | None:
    for name, code in USER_ERRORS.items():
        module_name, _, class_name = name.rpartition(".")
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(error, cls):
            return code
    return None


def _os_message(error: OSError) -> str:
    what = error.strerror or str(error)
    if isinstance(error, FileNotFoundError):
        what = "no such file"
    elif isinstance(error, IsADirectoryError):
        what = "is a directory, not a file"
    return f"{error.filename}: {what}" if error.filename is not None else what


def exit_status(error: BaseException) -> int:
    """The exit status of `error`: its code in the table above, EXIT_BUG for anything else."""
    known = exit_code_of(error)
    return EXIT_BUG if known is None else known[0]


def exit_code_of(error: BaseException) -> tuple[int, str] | None:
    """The exit status and the one-line reason for a user-facing error; None for anything else (a bug)."""
    if isinstance(error, CommandError):
        return error.code, str(error)
    code = _registered(error)
    if code is not None:
        return code, str(error)
    if isinstance(error, EOFError | zlib.error | gzip.BadGzipFile):
        return EXIT_USAGE, f"damaged compressed input: {error}"
    if isinstance(error, UnicodeDecodeError):
        return EXIT_USAGE, f"not UTF-8 text: byte {error.object[error.start:error.start + 1]!r} at {error.start}"
    if isinstance(error, TimeoutError):
        return EXIT_KAFKA, str(error) or "timed out waiting for Kafka"
    if isinstance(error, OSError):
        return EXIT_USAGE, _os_message(error)
    return None


def check_input_files(paths: list[str]) -> None:
    """Fail before anything starts (a broker, a worker) when a capture is missing, a directory or unreadable."""
    for path in paths:
        if path == "-":
            continue
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not a file")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: permission denied")
