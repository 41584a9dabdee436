"""Silences on Kafka: the compacted `<prefix>.silences` topic (key: silence id, value: `schemas.silences.Silence`).

`SilenceFeed` keeps a `SilenceSet` up to date for the stream worker (a plain consumer on every partition of the
topic, from the beginning, outside the consumer group: every worker sees every silence). `read_silences` and
`publish_silence` serve the `tailwatch silences` commands and `replay --silences-topic`. A record with no value
(a tombstone) removes its silence; `silences expire` writes an expired record instead, so replays of the past
still see what was silenced then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import TopicPartition
from pydantic import ValidationError

from agents import kafka_clients
from agents.kafka_clients import PLAINTEXT
from agents.kafka_security import KafkaSecurity
from agents.settings import KafkaSettings
from agents.topic_reader import topic_messages
from agents.topics import TopicSpec, ensure_topics
from pipeline.rules.silences import SilenceSet
from schemas.silences import Silence

log = logging.getLogger("tailwatch.silences")


class SilenceFileError(ValueError):
    pass


def silences_topic_spec(settings: KafkaSettings) -> TopicSpec:
    return TopicSpec(settings.topic("silences"), 1, settings.replication_factor, compacted=True)


def validated(value: Any) -> dict[str, Any]:
    """A silence record checked against the schema (raises pydantic's ValidationError)."""
    return Silence.model_validate(value).model_dump()


def apply(silences: dict[str, dict[str, Any]], key: bytes | None, value: bytes | None) -> str | None:
    """Apply one topic record: a silence replaces its id's earlier one; a tombstone removes it; a record that
    is not a valid silence (not JSON, a schema error, a regex RE2 does not accept) is logged with its reason and
    skipped — the reason is returned (None when applied), an earlier version of that silence stays."""
    if key is not None and value is None:
        silences.pop(key.decode(errors="replace"), None)
        return None
    try:
        record = validated(orjson.loads(value or b"null"))
    except (orjson.JSONDecodeError, ValidationError) as error:
        reason = str(error)[:300]
        log.warning("invalid silence record skipped",
                    extra={"fields": {"key": None if key is None else key.decode(errors="replace"),
                                      "error": reason}})
        return reason
    silences[record["id"]] = record
    return None


async def read_silences(settings: KafkaSettings, idle_s: float = 1.0) -> dict[str, dict[str, Any]]:
    """Every silence on the topic now, by id (the topic is created when missing)."""
    assert settings.bootstrap
    await ensure_topics(settings.bootstrap, [silences_topic_spec(settings)], security=settings.security,
                        create=settings.create_topics)
    silences: dict[str, dict[str, Any]] = {}
    async for message in topic_messages(settings.bootstrap, settings.topic("silences"), idle_s=idle_s,
                                        security=settings.security):
        apply(silences, message.key, message.value)
    return silences


async def publish_silence(settings: KafkaSettings, record: dict[str, Any]) -> None:
    assert settings.bootstrap
    await ensure_topics(settings.bootstrap, [silences_topic_spec(settings)], security=settings.security,
                        create=settings.create_topics)
    writer = kafka_clients.producer(settings.bootstrap, security=settings.security, acks="all")
    await writer.start()
    try:
        await writer.send_and_wait(settings.topic("silences"), orjson.dumps(validated(record)),
                                   key=record["id"].encode())
    finally:
        await writer.stop()


def load_silence_file(path: str | Path) -> list[dict[str, Any]]:
    """Silences from a file: JSON Lines (`tailwatch silences list --json`) or a YAML list of records. A file that
    cannot be read or parsed is an error; an entry that is not a valid silence (e.g. a regex RE2 does not accept)
    costs only itself: it is skipped and logged with its position and reason."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise SilenceFileError(f"{path}: cannot read: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise SilenceFileError(f"{path}: not UTF-8 text (silences are JSON Lines or YAML)") from error
    try:
        stripped = text.lstrip()
        if stripped.startswith("{"):
            items = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        else:
            items = yaml.safe_load(text) or []
    except (orjson.JSONDecodeError, yaml.YAMLError) as error:
        raise SilenceFileError(f"{path}: not JSON Lines or YAML: {error}") from error
    if not isinstance(items, list):
        raise SilenceFileError(f"{path}: expected a list of silences")
    silences = []
    for index, item in enumerate(items):
        try:
            silences.append(validated(item))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            log.warning("invalid silence skipped", extra={"fields": {
                "file": str(path), "entry": index + 1, "id": item.get("id") if isinstance(item, dict) else None,
                "error": f"{where}: {first['msg']}"[:300]}})
    return silences


class SilenceFeed:
    """The worker's view of the silences topic, kept current by `run` (a task of the worker's app)."""

    def __init__(self, bootstrap: str, topic: str, *, security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.topic = topic
        self.silences = SilenceSet()
        self.records: dict[str, dict[str, Any]] = {}
        self.invalid_records = 0  # topic records skipped (logged with their reason), for /metrics
        self.ready = asyncio.Event()

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the topic has been read up to where it ended at start-up (bounded: after the timeout the
        worker goes on with what it has, and says so)."""
        try:
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        except TimeoutError:
            log.warning("silences not loaded yet; going on", extra={"fields": {"topic": self.topic}})

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if apply(self.records, key, value) is not None:
            self.invalid_records += 1
            return
        self.silences.reset(self.records.values())
        for silence_id, reason in self.silences.rejected.items():  # validated records pass: a defence only
            log.warning("silence skipped", extra={"fields": {"id": silence_id, "error": reason}})

    async def run(self) -> None:
        consumer = kafka_clients.consumer(bootstrap=self.bootstrap, security=self.security, enable_auto_commit=False,
                                  auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            while partitions is None:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic)
                if partitions is None:
                    await asyncio.sleep(0.5)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            started = time.monotonic()
            if all(end == 0 for end in ends.values()):
                self.ready.set()  # nothing to read: do not hold the worker's first batch for a fetch timeout
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    for message in messages:
                        self._apply(message.key, message.value)
                if batch:
                    log.info("silences updated", extra={"fields": {"silences": len(self.silences)}})
                if not self.ready.is_set():
                    positions = [await consumer.position(tp) for tp in tps]
                    caught_up = all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True))
                    if caught_up or (not batch and time.monotonic() - started > 5.0):
                        self.ready.set()
        finally:
            await consumer.stop()
