"""The deliveries ledger: a compacted topic holding one record per finished delivery (key = delivery key).

Read whole at start (until nothing new arrives for a moment: end offsets are not trusted, the embedded broker
reports them wrong), then appended to after every outcome, before the alert event is acknowledged.
"""

from __future__ import annotations

import logging

import orjson
from aiokafka import AIOKafkaProducer

from agents.topic_reader import topic_messages
from schemas.deliveries import Delivery, NotificationDeadLetter

log = logging.getLogger("tailwatch.notify")


async def read_ledger(bootstrap: str, topic: str, idle_s: float = 1.0) -> dict[str, Delivery]:
    ledger: dict[str, Delivery] = {}
    async for message in topic_messages(bootstrap, topic, idle_s=idle_s):
        if message.value is None:  # a tombstone
            continue
        record = Delivery.model_validate_json(message.value)
        ledger[record.key] = record
    return ledger


class LedgerWriter:
    def __init__(self, bootstrap: str, deliveries_topic: str, deadletter_topic: str) -> None:
        self.deliveries_topic = deliveries_topic
        self.deadletter_topic = deadletter_topic
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, client_id="tailwatch-notify",
                                          acks="all", request_timeout_ms=30_000, retry_backoff_ms=200)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("ledger writer not started")
        return self._producer

    async def record(self, records: list[Delivery]) -> None:
        """Write records and wait until Kafka has every one of them."""
        futures = [await self.producer.send(self.deliveries_topic, key=record.key.encode(),
                                            value=orjson.dumps(record.model_dump(mode="json")))
                   for record in records]
        for future in futures:
            await future

    async def dead_letter(self, letter: NotificationDeadLetter) -> None:
        future = await self.producer.send(self.deadletter_topic, key=(letter.key or "invalid").encode(),
                                          value=orjson.dumps(letter.model_dump(mode="json")))
        await future
