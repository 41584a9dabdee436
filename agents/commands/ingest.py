"""`tailwatch ingest --wrangler WORKER… | --from FILE… | --stdin`: publish normalized records to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from agents.commands.common import (
    add_kafka_args,
    add_route_args,
    check_input_files,
    extractor_from,
    kafka_settings_from,
)
from agents.embedded_broker import kafka_bootstrap
from agents.ingest import IngestConfig, Ingestor, reader_chunks
from agents.publisher import LOG_TOPIC_MAX_MESSAGE_BYTES, Publisher
from agents.settings import KafkaSettings
from agents.sources import (
    chunks_of,
    gunzip_live,
    report_input_problems,
    source_name,
    stdin_is_live,
    stdin_reader,
)
from agents.topics import TopicSpec, ensure_topics
from agents.wrangler_tail import WranglerTail
from pipeline.batching import DEFAULT_BATCH_RECORDS, DEFAULT_LATENESS_MS
from pipeline.extract import Extractor

log = logging.getLogger("tailwatch.ingest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--wrangler", action="append", metavar="WORKER",
                        help="run `wrangler tail WORKER --format json` (repeatable: one process per Worker)")
    inputs.add_argument("--from", dest="files", nargs="+", metavar="FILE", help="saved captures (plain or .gz)")
    inputs.add_argument("--stdin", action="store_true", help="read a capture or a live pipe from stdin")
    parser.add_argument("--batch-records", type=int, default=DEFAULT_BATCH_RECORDS,
                        help="records per Kafka message at most")
    parser.add_argument("--lateness-ms", type=int, default=DEFAULT_LATENESS_MS,
                        help="allowed lateness stamped into batch watermarks")
    parser.add_argument("--linger-ms", type=int, default=200, help="live inputs: send pending records this often")
    add_kafka_args(parser)
    add_route_args(parser)


def log_topic_specs(settings: KafkaSettings) -> list[TopicSpec]:
    """The logs and dead-letter topics take the publisher's record batches, up to MAX_MESSAGE_BYTES: Kafka's
    default limit (1 MiB, as on MSK) would refuse the bigger ones."""
    configs = {"max.message.bytes": str(LOG_TOPIC_MAX_MESSAGE_BYTES)}
    return [
        TopicSpec(settings.logs_topic, settings.partitions, settings.replication_factor, configs=configs),
        TopicSpec(settings.deadletter_topic, settings.partitions, settings.replication_factor, configs=configs),
    ]


async def ingest(args: argparse.Namespace, bootstrap: str, settings: KafkaSettings,
                 extractor: Extractor) -> Ingestor:
    await ensure_topics(bootstrap, log_topic_specs(settings), security=settings.security,
                        create=settings.create_topics)
    # The embedded broker has no idempotent producer; with a configured Kafka, try it and fall back.
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic, security=settings.security,
                          idempotent=None if settings.bootstrap else False)
    await publisher.start()
    config = IngestConfig(batch_records=args.batch_records, lateness_ms=args.lateness_ms,
                          linger_ms=args.linger_ms)
    ingestor = Ingestor(publisher, settings.partitions, config, extractor)
    try:
        if args.wrangler:
            await _supervise(args.wrangler, ingestor)
        elif args.stdin and stdin_is_live():
            # A pipe (`wrangler tail … | tailwatch ingest --stdin`): pending records go out every linger_ms, not
            # only when a batch fills or the pipe closes. Its end is the end of the input.
            chunks = gunzip_live(reader_chunks(await stdin_reader(), config.linger_ms))
            await ingestor.ingest_stream("stdin", chunks, final=lambda: True)
        else:
            paths = args.files or ["-"]
            for index, path in enumerate(paths):
                await ingestor.ingest_chunks(source_name(path), chunks_of(path), stream="files",
                                             final=index == len(paths) - 1)
    finally:
        await publisher.stop()
    return ingestor


async def _supervise(workers: list[str], ingestor: Ingestor) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    tails = [WranglerTail(worker, ingestor) for worker in workers]
    await asyncio.gather(*(tail.run(stop) for tail in tails))


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    if args.files:
        check_input_files(args.files)  # before a broker starts; later errors: agents/cli.py's exit-code table
    if not settings.bootstrap:
        log.warning("no Kafka configured: using an embedded broker that lives only as long as this command")
    with kafka_bootstrap(settings.bootstrap) as bootstrap:
        ingestor = asyncio.run(ingest(args, bootstrap, settings, extractor_from(args)))
    publisher = ingestor.publisher
    print(f"{ingestor.totals.summary_line()} batches={publisher.batches_sent} published={publisher.records_sent} "
          f"dead_letters={publisher.dead_letters_sent} {ingestor.extractor.catalog.stats.summary()}", file=sys.stderr)
    if args.wrangler:  # a live tail may be quiet: a run with no event is no input error
        return 0
    return report_input_problems("ingest", ingestor.totals)
