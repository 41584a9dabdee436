"""`tailwatch ingest --wrangler WORKER… | --from FILE… | --stdin | --listen [HOST:]PORT`: publish normalized records
to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import sys

from agents.commands.common import (
    UsageError,
    add_kafka_args,
    add_route_args,
    check_input_files,
    extractor_from,
    kafka_settings_from,
)
from agents.embedded_broker import kafka_bootstrap
from agents.ingest import IngestConfig, Ingestor, reader_chunks
from agents.publisher import LOG_TOPIC_MAX_MESSAGE_BYTES, Publisher
from agents.push_listener import ListenConfig, PushListener
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
from pipeline.push_bodies import DEFAULT_MAX_BODY_BYTES

log = logging.getLogger("tailwatch.ingest")

TOKEN_ENV = "TAILWATCH_INGEST_TOKEN"  # noqa: S105 - the name of the variable, not a secret
MIN_TOKEN_CHARS = 16  # guessable tokens refused; also long enough for agents/logs.py to redact it everywhere


def add_arguments(parser: argparse.ArgumentParser) -> None:
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--wrangler", action="append", metavar="WORKER",
                        help="run `wrangler tail WORKER --format json` (repeatable: one process per Worker)")
    inputs.add_argument("--from", dest="files", nargs="+", metavar="FILE", help="saved captures (plain or .gz)")
    inputs.add_argument("--stdin", action="store_true", help="read a capture or a live pipe from stdin")
    inputs.add_argument("--listen", metavar="[HOST:]PORT",
                        help="receive Tail Worker (POST /v1/tail) and Logpush (POST /v1/logpush) pushes over HTTP; "
                             f"the bearer token comes from ${TOKEN_ENV} (required unless HOST is loopback)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="--listen: largest request body accepted, decompressed (413 above)")
    parser.add_argument("--max-concurrent", type=int, default=8,
                        help="--listen: requests published at once (64 more wait, the rest get 503)")
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
        elif args.listen:
            # A request decodes hundreds of events at once: many short-lived dicts that reference counting frees.
            # Long-lived objects need no more cycle scans, and young ones are scanned less often (as the worker).
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            await PushListener(ingestor, listen_config(args)).serve(_stop_event())
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


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    return stop


def listen_address(value: str) -> tuple[str, int]:
    """`[HOST:]PORT` (an IPv6 host in brackets); without a host, every interface."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host = "0.0.0.0"  # noqa: S104 - a container's listener; a token is then required
    host = host.strip("[]")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise UsageError(f"--listen {value!r}: expected [HOST:]PORT, e.g. 0.0.0.0:8787 or 127.0.0.1:8787")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_config(args: argparse.Namespace) -> ListenConfig:
    from agents.config_file import config_path, load_config  # noqa: PLC0415 - as kafka_settings_from

    host, port = listen_address(args.listen)
    token = load_config(config_path(getattr(args, "tailwatch_config", None))).ingest_token() or None
    if token is None and not is_loopback(host):
        raise UsageError(f"--listen {args.listen}: set {TOKEN_ENV} or ingest.token_file in tailwatch.yaml (senders "
                         "then send `Authorization: Bearer <token>`); without a token the listener only binds to "
                         "loopback (127.0.0.1, ::1)")
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UsageError(f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters: use a random token, e.g. "
                         "`openssl rand -hex 32`")
    if args.max_body_bytes < 1024 or args.max_concurrent < 1:
        raise UsageError("--max-body-bytes must be at least 1024 and --max-concurrent at least 1")
    return ListenConfig(host=host, port=port, token=token, max_body_bytes=args.max_body_bytes,
                        max_concurrent=args.max_concurrent)


async def _supervise(workers: list[str], ingestor: Ingestor) -> None:
    stop = _stop_event()
    tails = [WranglerTail(worker, ingestor) for worker in workers]
    await asyncio.gather(*(tail.run(stop) for tail in tails))


def run(args: argparse.Namespace) -> int:
    settings = kafka_settings_from(args)
    if args.listen:
        listen_config(args)  # a bad address or a missing token: exit 2 before a broker starts
    if args.files:
        check_input_files(args.files)  # before a broker starts; later errors: agents/cli.py's exit-code table
    if not settings.bootstrap:
        log.warning("no Kafka configured: using an embedded broker that lives only as long as this command")
    with kafka_bootstrap(settings.bootstrap) as bootstrap:
        ingestor = asyncio.run(ingest(args, bootstrap, settings, extractor_from(args)))
    publisher = ingestor.publisher
    print(f"{ingestor.totals.summary_line()} batches={publisher.batches_sent} published={publisher.records_sent} "
          f"dead_letters={publisher.dead_letters_sent} {ingestor.extractor.catalog.stats.summary()}", file=sys.stderr)
    if args.wrangler or args.listen:  # a live tail or a listener may be quiet: a run with no event is no input error
        return 0
    return report_input_problems("ingest", ingestor.totals)
