"""`tailwatch topics create`: create every topic tailwatch uses (a one-shot for docker-compose / a k8s Job)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from agents.commands.common import add_kafka_args, kafka_settings_from
from agents.commands.notify_cmd import notify_topic_specs
from agents.commands.probe_cmd import probe_topic_specs
from agents.commands.worker import stream_topic_specs
from agents.settings import BOOTSTRAP_ENV, KafkaSettings
from agents.topics import KafkaUnavailable, TopicSpec, ensure_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "list"],
                        help="create: the missing topics; list: print the topics tailwatch would create")
    parser.add_argument("--attempts", type=int, default=10, help="connection attempts before giving up")
    add_kafka_args(parser)


def all_topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    specs: dict[str, TopicSpec] = {}
    for spec in [*stream_topic_specs(settings), *notify_topic_specs(settings), *probe_topic_specs(settings)]:
        specs.setdefault(spec.name, spec)
    return list(specs.values())


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    specs = all_topic_specs(settings)
    if args.action == "list":
        for spec in specs:
            sys.stdout.buffer.write(orjson.dumps(spec.__dict__) + b"\n")
        return 0
    if not settings.bootstrap:
        print(f"tailwatch topics: set --bootstrap or {BOOTSTRAP_ENV}", file=sys.stderr)
        return 2
    try:
        created = asyncio.run(ensure_topics(settings.bootstrap, specs, attempts=args.attempts))
    except KafkaUnavailable as error:
        print(f"tailwatch topics: {error}", file=sys.stderr)
        return 3
    print(orjson.dumps({"created": created, "existing": [s.name for s in specs if s.name not in created]}).decode())
    return 0
