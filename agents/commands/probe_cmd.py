"""`tailwatch probe`: the uptime probe (the spec's "External monitoring") — check URLs every interval, publish
each result to `<prefix>.probes`, alert after N consecutive failures on `<prefix>.alerts`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from agents.commands.common import add_kafka_args, kafka_settings_from
from agents.embedded_broker import kafka_bootstrap
from agents.probe import Probe, ProbePlan
from agents.settings import KafkaSettings
from agents.topics import TopicSpec, ensure_topics
from schemas.probes import ProbeConfig, ProbeTarget
from schemas.rules import duration_ms

DEFAULT_PROBES = Path(__file__).resolve().parents[1] / "defaults" / "probes.yaml"


class ProbeConfigError(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PROBES,
                        help="probe YAML: targets, interval, timeout, rule (default: the spec's gateway check)")
    parser.add_argument("--url", action="extend", nargs="+", metavar="URL",
                        help="URLs to check (`--url A B` or repeated; replaces the config's targets; expects 200)")
    parser.add_argument("--interval", type=float, default=None, help="seconds between checks (config: 60)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a check fails (config: 10)")
    parser.add_argument("--failures", type=int, default=None,
                        help="consecutive failed checks that fire the alert (config: 2)")
    parser.add_argument("--count", type=int, default=None, help="stop after this many rounds (default: run on)")
    add_kafka_args(parser, config_flag="--tailwatch-config")


def probe_topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    return [TopicSpec(settings.topic("probes"), settings.partitions, settings.replication_factor),
            TopicSpec(settings.topic("alerts"), settings.partitions, settings.replication_factor)]


def validation_line(error: ValidationError) -> str:
    """pydantic's problems on one line: `where: what; where: what`."""
    return "; ".join(f"{'.'.join(str(part) for part in item['loc']) or 'file'}: {item['msg']}"
                     for item in error.errors())


def load_plan(args: argparse.Namespace) -> ProbePlan:
    try:
        raw = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
        if raw is None:
            raise ProbeConfigError(f"{args.config}: the file is empty (a probe file has `targets:`)")
        config = ProbeConfig.model_validate(raw)
    except OSError as error:
        raise ProbeConfigError(f"{args.config}: cannot read: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ProbeConfigError(f"{args.config}: not UTF-8 text (byte {error.start})") from error
    except yaml.YAMLError as error:
        raise ProbeConfigError(f"{args.config}: not valid YAML: {' '.join(str(error).split())}") from error
    except ValidationError as error:
        raise ProbeConfigError(f"{args.config}: {validation_line(error)}") from error
    targets = config.targets
    rule = config.rule
    try:
        if args.url:
            targets = [ProbeTarget(url=url) for url in args.url]
        if args.failures is not None:
            rule = rule.model_validate({**rule.model_dump(), "failures": args.failures})
    except ValidationError as error:
        raise ProbeConfigError(validation_line(error)) from error
    interval = args.interval if args.interval is not None else duration_ms(config.interval) / 1000
    timeout = args.timeout if args.timeout is not None else duration_ms(config.timeout) / 1000
    if interval <= 0 or timeout <= 0:
        raise ProbeConfigError("--interval and --timeout must be positive")
    return ProbePlan(list(targets), interval, timeout, rule)


async def probe(plan: ProbePlan, bootstrap: str, settings: KafkaSettings, count: int | None) -> Probe:
    await ensure_topics(bootstrap, probe_topic_specs(settings), security=settings.security,
                        create=settings.create_topics)
    runner = Probe(bootstrap, settings.topic("probes"), settings.topic("alerts"), plan, security=settings.security)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await runner.start()
    try:
        await runner.recover()
        await runner.run(count, stop)
    finally:
        await runner.stop()
    return runner


def run(args: argparse.Namespace) -> int:
    plan = load_plan(args)  # errors (the config, Kafka): agents/cli.py's exit-code table
    kafka = kafka_settings_from(args)
    with kafka_bootstrap(kafka.bootstrap) as bootstrap:
        runner = asyncio.run(probe(plan, bootstrap, kafka, args.count))
    print(f"checks={runner.checks} failed={runner.failed_checks} alerts={runner.alerts_published} "
          f"rejected={runner.rejected}", file=sys.stderr)
    return 0
