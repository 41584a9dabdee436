"""Arguments and helpers several subcommands share."""

from __future__ import annotations

import argparse

from agents.settings import BOOTSTRAP_ENV, KafkaSettings
from pipeline.extract import Extractor
from pipeline.routes import DEFAULT_ROUTE_TEMPLATES, RouteTable


def add_route_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--route", action="append", default=[], metavar="TEMPLATE",
                        help="a route template such as /api/items/:id (repeatable; added to the spec's defaults)")


def extractor_from(args: argparse.Namespace) -> Extractor:
    return Extractor(RouteTable([*DEFAULT_ROUTE_TEMPLATES, *args.route]))


def add_kafka_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=None,
                        help=f"Kafka bootstrap address (default ${BOOTSTRAP_ENV}; unset: start the embedded broker)")
    parser.add_argument("--topic-prefix", default=None, help="topic name prefix (default tailwatch)")
    parser.add_argument("--partitions", type=int, default=None, help="partitions of created topics (default 4)")


def kafka_settings_from(args: argparse.Namespace) -> KafkaSettings:
    base = KafkaSettings()
    return KafkaSettings(
        bootstrap=args.bootstrap or base.bootstrap,
        topic_prefix=args.topic_prefix or base.topic_prefix,
        partitions=args.partitions or base.partitions,
        replication_factor=base.replication_factor,
    )
