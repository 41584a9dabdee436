"""`tailwatch broker`: run the embedded broker in the foreground and print its bootstrap address."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from agents.embedded_broker import BrokerError, EmbeddedBroker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")


def run(args: argparse.Namespace) -> int:
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        with EmbeddedBroker(args.port) as broker:
            print(broker.bootstrap, flush=True)
            print(f"export TAILWATCH_KAFKA_BOOTSTRAP={broker.bootstrap}  # Ctrl-C stops the broker",
                  file=sys.stderr)
            while not done.wait(0.5):
                if not broker.running:
                    print("embedded broker exited", file=sys.stderr)
                    return 1
    except BrokerError as error:
        print(f"tailwatch broker: {error}", file=sys.stderr)
        return 3
    return 0
