"""`tailwatch alerts tail [--from-beginning] [--follow]`: a subscriber to the alerts topic, printing alert events as
JSON Lines. Without `--follow`: the topic's history, then exit. `--follow`: only alerts published from now on (like
`tail -f` and Kafka's console consumer); `--follow --from-beginning`: the history, then the new ones."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from agents.commands.common import UsageError, add_action, add_kafka_args, kafka_settings_from
from agents.kafka_security import KafkaSecurity
from agents.topic_reader import topic_messages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_action(parser, {"tail": "print the alerts topic as JSON Lines"})
    parser.add_argument("--from-beginning", action="store_true",
                        help="with --follow: print the alerts already on the topic first (without --follow the "
                             "history is what is printed)")
    parser.add_argument("--follow", action="store_true",
                        help="keep waiting for new alerts; only those published from now on, unless --from-beginning")
    add_kafka_args(parser)


async def _tail(bootstrap: str, topic: str, follow: bool, from_beginning: bool, security: KafkaSecurity) -> None:
    from_end = follow and not from_beginning

    def ready() -> None:
        if follow:
            print(f"tailwatch alerts: following {topic}" + (" (new alerts only)" if from_end else ""),
                  file=sys.stderr, flush=True)

    async for message in topic_messages(bootstrap, topic, follow=follow, from_end=from_end, on_ready=ready,
                                        security=security):
        sys.stdout.buffer.write(message.value + b"\n")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    if not settings.bootstrap:
        raise UsageError("set --bootstrap or TAILWATCH_KAFKA_BOOTSTRAP (the embedded broker of another command is "
                         "not shared)")
    with contextlib.suppress(KeyboardInterrupt):  # Kafka errors: agents/cli.py (exit 3)
        asyncio.run(_tail(settings.bootstrap, settings.topic("alerts"), args.follow, args.from_beginning,
                          settings.security))
    return 0
