"""The ingestion agent: input bytes → reader (pipeline) → per-partition batches → the logs topic.

One `SourceFeed` per input (a file, stdin, one `wrangler tail` process): its own parser per run of the input
and its own batch builder (so its own producer id, batch sequence and watermark). Rejected input goes to the
dead-letter topic with its reason; wrangler's own stdout notices (the give-up line) are logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from agents.publisher import Publisher
from agents.sources import damage_of
from pipeline.batching import DEFAULT_BATCH_RECORDS, DEFAULT_LATENESS_MS, BatchBuilder
from pipeline.extract import Extractor
from pipeline.framing import DEFAULT_MAX_OBJECT_BYTES
from pipeline.parsing import LogParser, ParseOutput, ParseStats

log = logging.getLogger("tailwatch.ingest")

READ_BYTES = 1 << 16
ACK_EVERY_BATCHES = 256


@dataclass(frozen=True)
class IngestConfig:
    batch_records: int = DEFAULT_BATCH_RECORDS
    lateness_ms: int = DEFAULT_LATENESS_MS
    linger_ms: int = 200  # live inputs: pending records are sent at least this often
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES


def producer_prefix() -> str:
    """Unique per run: a container restarted with the same hostname and pid 1 is a new producer."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class SourceFeed:
    """One input's state across runs: batch builder and cumulative counts."""

    def __init__(self, ingestor: Ingestor, source: str) -> None:
        self.ingestor = ingestor
        self.source = source
        config = ingestor.config
        self.builder = BatchBuilder(f"{ingestor.producer}/{source}", source, ingestor.partitions,
                                    config.batch_records, config.lateness_ms)
        self.stats = ParseStats()
        self._unacked = 0

    def new_parser(self, source: str | None = None) -> LogParser:
        return LogParser(source or self.source, self.ingestor.extractor, self.ingestor.config.max_object_bytes)

    async def push(self, out: ParseOutput) -> None:
        publisher = self.ingestor.publisher
        batches = self.builder.add(out.records)
        if batches:
            await publisher.send_batches(batches)
            self._unacked += len(batches)
        if out.dead_letters:
            await publisher.send_dead_letters(out.dead_letters)
        for notice in out.notices:
            log.warning("input notice", extra={"fields": {"source": self.source, "notice": notice}})
        for notice in self.ingestor.extractor.catalog.take_notices():  # once per service reaching a cap
            log.warning("endpoint cap reached", extra={"fields": {"source": self.source, "notice": notice}})
        if self._unacked >= ACK_EVERY_BATCHES:
            await publisher.flush()
            self._unacked = 0

    async def flush(self, heartbeat: bool, final: bool = False) -> None:
        batches = self.builder.flush(heartbeat=heartbeat, final=final)
        if batches:
            await self.ingestor.publisher.send_batches(batches)
        await self.ingestor.publisher.flush()
        self._unacked = 0

    def end_run(self, parser: LogParser) -> None:
        self.stats.merge(parser.stats)
        self.ingestor.totals.merge(parser.stats)


class Ingestor:
    def __init__(self, publisher: Publisher, partitions: int, config: IngestConfig | None = None,
                 extractor: Extractor | None = None, producer: str | None = None) -> None:
        self.publisher = publisher
        self.partitions = partitions
        self.config = config or IngestConfig()
        self.extractor = extractor or Extractor()
        self.producer = producer or producer_prefix()
        self.totals = ParseStats()
        self._feeds: dict[str, SourceFeed] = {}

    def feed(self, source: str) -> SourceFeed:
        if source not in self._feeds:
            self._feeds[source] = SourceFeed(self, source)
        return self._feeds[source]

    async def ingest_chunks(self, source: str, chunks: Iterable[bytes], stream: str | None = None,
                            final: bool = True) -> ParseStats:
        """A finite input (file, stdin): everything is sent and acknowledged when this returns.

        Inputs given together (`--from a b`) share one `stream`: one producer and watermark, as if concatenated;
        `final=False` on all but the last keeps the stream open.
        """
        feed = self.feed(stream or source)
        parser = feed.new_parser(source)
        for chunk in chunks:
            await feed.push(parser.feed(chunk))
        if (damage := damage_of(chunks)) is not None:  # dead-lettered; the records before the damage are published
            await feed.push(parser.input_damaged(damage.offset, damage.reason))
        await feed.push(parser.finish())
        feed.end_run(parser)
        await feed.flush(heartbeat=True, final=final)
        return parser.stats

    async def ingest_stream(self, source: str, chunks: AsyncIterable[bytes | None],
                            final: Callable[[], bool] = lambda: False) -> ParseStats:
        """A live input. `None` from the iterator means "nothing new for a while": pending records are sent.
        At its end, `final()` says whether the input is over for good (tailwatch is stopping) or will restart."""
        feed = self.feed(source)
        parser = feed.new_parser()
        async for chunk in chunks:
            if chunk is None:
                await feed.flush(heartbeat=True)
                continue
            await feed.push(parser.feed(chunk))
        if (damage := damage_of(chunks)) is not None:  # a damaged .gz pipe: what came before it is published
            await feed.push(parser.input_damaged(damage.offset, damage.reason))
        await feed.push(parser.finish())
        feed.end_run(parser)
        await feed.flush(heartbeat=True, final=final())
        return parser.stats


async def reader_chunks(reader: asyncio.StreamReader, linger_ms: int) -> AsyncIterator[bytes | None]:
    """Chunks from a stream, and `None` once `linger_ms` has passed since data arrived that is not sent yet."""
    loop = asyncio.get_running_loop()
    due: float | None = None  # when the pending data must go out
    while True:
        timeout = None if due is None else max(0.0, due - loop.time())
        try:
            chunk: bytes | None = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
        except TimeoutError:
            chunk = None
        if chunk == b"":
            return
        if chunk is not None:
            yield chunk
            if due is None:
                due = loop.time() + linger_ms / 1000
        if due is not None and loop.time() >= due:
            due = None
            yield None
