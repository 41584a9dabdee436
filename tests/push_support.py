"""A push listener on 127.0.0.1 (port chosen by the OS) publishing to the embedded broker, for tests and bench."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from agents.commands.ingest import log_topic_specs
from agents.ingest import IngestConfig, Ingestor
from agents.publisher import Publisher
from agents.push_listener import ListenConfig, PushListener
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from pipeline.synthetic import DEMO_START_MS, generate_events


@dataclass
class Running:
    listener: PushListener
    publisher: Publisher
    url: str


@contextlib.asynccontextmanager
async def running_listener(settings: KafkaSettings, config: ListenConfig | None = None,
                           batch_records: int = 500) -> AsyncIterator[Running]:
    bootstrap = settings.bootstrap
    assert bootstrap
    await ensure_topics(bootstrap, log_topic_specs(settings))
    publisher = Publisher(bootstrap, settings.logs_topic, settings.deadletter_topic, idempotent=False)
    await publisher.start()
    ingestor = Ingestor(publisher, settings.partitions, IngestConfig(batch_records=batch_records))
    listener = PushListener(ingestor, config or ListenConfig(host="127.0.0.1", port=0))
    stop = asyncio.Event()
    serving = asyncio.create_task(listener.serve(stop))
    for _ in range(500):  # bounded: the port is known once the site started
        if listener.port is not None or serving.done():
            break
        await asyncio.sleep(0.01)
    assert listener.port is not None, serving
    try:
        yield Running(listener, publisher, f"http://127.0.0.1:{listener.port}")
    finally:
        stop.set()
        try:
            await serving
        finally:
            await publisher.stop()


def synthetic_events(count: int, seed: int = 17) -> list[dict[str, Any]]:
    stream = generate_events(seed, DEMO_START_MS, count // 300 + 2, 600, disorder_ms=2_000)
    return [event for _, event in zip(range(count), stream, strict=False)]


def array_body(events: list[Any], compress: bool = False) -> bytes:
    body = orjson.dumps(events)
    return gzip.compress(body, compresslevel=1) if compress else body
