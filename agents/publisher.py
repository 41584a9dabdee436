"""Publishing to Kafka: log batches to their partitions, dead letters keyed by source.

acks=all always; the idempotent producer when the broker supports it (Apache Kafka does; the embedded Tansu
does not, and then tailwatch says so once and goes on with acks=all and bounded retries). A send that fails
after the producer's own retries raises: tailwatch never drops a batch silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, UnknownError

from agents import kafka_clients
from agents.kafka_clients import PLAINTEXT
from agents.kafka_security import KafkaSecurity
from agents.topics import KafkaUnavailable
from pipeline.columnar_batches import encode_columnar

log = logging.getLogger("tailwatch.publisher")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_SENDER_LOG = logging.getLogger("aiokafka.producer.sender")


def _refused_producer_id(record: logging.LogRecord) -> bool:
    """aiokafka logs a broker without InitProducerId as an error before `start` raises; tailwatch falls back and
    says so in its own words (one warning), so that line is dropped while an idempotent start is tried."""
    return not record.getMessage().startswith("Unexpected error during InitProducerIdRequest")

LOG_TOPIC_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES + 64 * 1024  # a full record batch and its headers


class Publisher:
    def __init__(self, bootstrap: str, logs_topic: str, deadletter_topic: str, idempotent: bool | None = None,
                 connect_attempts: int = 5, client_id: str = "tailwatch-ingest",
                 clock_ms: Callable[[], int] | None = None, *, security: KafkaSecurity = PLAINTEXT) -> None:
        """`clock_ms`: the publish time of each logs-topic message (default: the client's wall clock). Workers
        judge idle producers by publish times; a simulation (`bench soak`) passes its simulated clock."""
        self.bootstrap = bootstrap
        self.security = security
        self.clock_ms = clock_ms
        self.logs_topic = logs_topic
        self.deadletter_topic = deadletter_topic
        self.idempotent = idempotent  # None: try, and fall back when the broker has no InitProducerId
        self.connect_attempts = connect_attempts
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._inflight: list[asyncio.Future[Any]] = []
        self.batches_sent = 0
        self.records_sent = 0
        self.dead_letters_sent = 0
        self.flushes = 0  # flushes whose sends were all acknowledged

    def _make(self, idempotent: bool) -> AIOKafkaProducer:
        return kafka_clients.producer(
            self.bootstrap, security=self.security, client_id=self.client_id, acks="all",
            enable_idempotence=idempotent, linger_ms=5, max_batch_size=MAX_MESSAGE_BYTES,
            max_request_size=MAX_MESSAGE_BYTES, request_timeout_ms=30_000, retry_backoff_ms=200,
        )

    async def start(self) -> None:
        delay = 0.5
        for attempt in range(1, self.connect_attempts + 1):
            want_idempotence = self.idempotent is not False
            producer = self._make(want_idempotence)
            _SENDER_LOG.addFilter(_refused_producer_id)
            try:
                await producer.start()
            except UnknownError:
                await producer.stop()
                if self.idempotent is True:
                    raise KafkaUnavailable(f"Kafka at {self.bootstrap} refused an idempotent producer") from None
                log.warning("broker has no idempotent producer; using acks=all with retries",
                            extra={"fields": {"bootstrap": self.bootstrap}})
                self.idempotent = False
                producer = self._make(False)
                await producer.start()
            except KafkaConnectionError as error:
                await producer.stop()
                if attempt == self.connect_attempts:
                    raise KafkaUnavailable(
                        f"cannot reach Kafka at {self.bootstrap} after {attempt} attempts: {error}") from error
                log.warning("Kafka not reachable yet, retrying",
                            extra={"fields": {"bootstrap": self.bootstrap, "attempt": attempt}})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
                continue
            finally:
                _SENDER_LOG.removeFilter(_refused_producer_id)
            self.idempotent = want_idempotence if self.idempotent is None else self.idempotent
            self._producer = producer
            return

    async def send_batches(self, batches: list[dict[str, Any]]) -> None:
        producer = self._require()
        for batch in batches:
            value = encode_columnar(batch)
            future = await producer.send(self.logs_topic, value=value, partition=batch["partition"],
                                         timestamp_ms=None if self.clock_ms is None else self.clock_ms())
            self._inflight.append(future)
            self.batches_sent += 1
            self.records_sent += len(batch["records"])

    async def send_dead_letters(self, letters: list[dict[str, Any]]) -> None:
        producer = self._require()
        for letter in letters:
            future = await producer.send(self.deadletter_topic, value=orjson.dumps(letter),
                                         key=letter["source"].encode())
            self._inflight.append(future)
            self.dead_letters_sent += 1

    async def flush(self) -> None:
        """Wait until everything sent so far is acknowledged; raises if any send failed."""
        await self.wait_acked(self.take_inflight())

    def take_inflight(self) -> list[asyncio.Future[Any]]:
        """The sends not yet awaited, handed to the caller (concurrent requests each wait for their own)."""
        inflight, self._inflight = self._inflight, []
        return inflight

    async def wait_acked(self, inflight: list[asyncio.Future[Any]], timeout_s: float | None = None) -> None:
        """Wait until these sends are acknowledged; raises if any failed, TimeoutError if not all were acknowledged
        within `timeout_s` (those go on and may still be delivered)."""
        if not inflight:
            return
        if timeout_s is not None:
            _done, pending = await asyncio.wait(inflight, timeout=timeout_s)
            if pending:
                for future in pending:
                    future.add_done_callback(_retrieve)
                raise TimeoutError(f"{len(pending)} of {len(inflight)} sends not acknowledged in {timeout_s} s")
        results = await asyncio.gather(*inflight, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise KafkaError(f"{len(failures)} of {len(results)} sends failed; first: {failures[0]!r}")
        self.flushes += 1

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await self.flush()
            finally:
                await producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("publisher not started")
        return self._producer


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A send given up on (timeout): its outcome is read so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()
