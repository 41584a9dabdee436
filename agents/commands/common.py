"""Arguments and helpers several subcommands share."""

from __future__ import annotations

import argparse

from agents.settings import BOOTSTRAP_ENV, KafkaSettings
from pipeline.endpoint_catalog import DEFAULT_MAX_ENDPOINTS, EndpointCatalog
from pipeline.extract import Extractor
from pipeline.routes import DEFAULT_ROUTE_TEMPLATES, RouteTable


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
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
