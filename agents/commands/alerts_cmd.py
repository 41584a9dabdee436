"""`tailwatch alerts tail [--follow]`: a subscriber to the alerts topic, printing alert events as JSON Lines."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from agents.commands.common import add_kafka_args, kafka_settings_from
from agents.topic_reader import topic_messages
from agents.topics import KafkaUnavailable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["tail"], help="tail: print the alerts topic")
    parser.add_argument("--from-beginning", action="store_true", help="(the default) read from the first alert")
    parser.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
    add_kafka_args(parser)


async def _tail(bootstrap: str, topic: str, follow: bool) -> None:
    async for message in topic_messages(bootstrap, topic, follow=follow):
        sys.stdout.buffer.write(message.value + b"\n")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    if not settings.bootstrap:
        print("tailwatch alerts: set --bootstrap or TAILWATCH_KAFKA_BOOTSTRAP (the embedded broker of another "
              "command is not shared)", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_tail(settings.bootstrap, settings.topic("alerts"), args.follow))
    except (KafkaUnavailable, TimeoutError, OSError) as error:
        print(f"tailwatch alerts: {error}", file=sys.stderr)
        return 3
    return 0
