"""`tailwatch topics create`: create every topic tailwatch uses (a one-shot for docker-compose / a k8s Job).
`tailwatch topics list`: those topics (JSON Lines); with a bootstrap address, whether each exists."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from agents.commands.common import UsageError, add_action, add_kafka_args, kafka_settings_from
from agents.commands.notify_cmd import notify_topic_specs
from agents.commands.probe_cmd import probe_topic_specs
from agents.commands.worker import worker_topic_specs
from agents.kafka_security import KafkaSecurity
from agents.settings import BOOTSTRAP_ENV, KafkaSettings
from agents.topics import TopicSpec, connect_admin, ensure_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_action(parser, {"create": "create the missing topics",
                        "list": "the topics tailwatch uses (with --bootstrap: whether each exists)"})
    parser.add_argument("--attempts", type=int, default=10, help="connection attempts before giving up")
    add_kafka_args(parser)


def all_topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    specs: dict[str, TopicSpec] = {}
    for spec in [*worker_topic_specs(settings), *notify_topic_specs(settings), *probe_topic_specs(settings)]:
        specs.setdefault(spec.name, spec)
    return list(specs.values())


async def existing_topics(bootstrap: str, security: KafkaSecurity) -> set[str]:
    admin = await connect_admin(bootstrap, security=security)
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    specs = all_topic_specs(settings)
    if args.action == "list":
        # Without a bootstrap: what `create` would make. With one: the same list, and whether each topic exists.
        exists = asyncio.run(existing_topics(settings.bootstrap, settings.security)) if settings.bootstrap else None
        for spec in specs:
            row = dict(spec.__dict__) if exists is None else {**spec.__dict__, "exists": spec.name in exists}
            sys.stdout.buffer.write(orjson.dumps(row) + b"\n")
        if exists is None:
            print(f"tailwatch topics: the topics `create` would make (give --bootstrap or {BOOTSTRAP_ENV} to see "
                  f"which exist)", file=sys.stderr)
        return 0
    if not settings.bootstrap:
        raise UsageError(f"set --bootstrap or {BOOTSTRAP_ENV}")
    created = asyncio.run(ensure_topics(settings.bootstrap, specs, attempts=args.attempts, security=settings.security,
                                        create=settings.create_topics))  # Kafka errors: exit 3
    print(orjson.dumps({"created": created, "existing": [s.name for s in specs if s.name not in created]}).decode())
    return 0
