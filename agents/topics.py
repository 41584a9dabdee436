"""Creating tailwatch's topics when they are missing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from agents.settings import kafka_connect_attempts

log = logging.getLogger("tailwatch.topics")

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)  # further topic configs (Kafka names)

    def topic_configs(self) -> dict[str, str]:
        return {**({"cleanup.policy": "compact"} if self.compacted else {}), **self.configs}


class KafkaUnavailable(RuntimeError):
    """Kafka could not be reached: the message names the address and how long tailwatch tried."""


async def connect_admin(bootstrap: str, attempts: int | None = None, timeout_s: float = 30.0) -> AIOKafkaAdminClient:
    """An admin client, after at most `attempts` tries with growing pauses (default: TAILWATCH_KAFKA_CONNECT_ATTEMPTS,
    else 5); else KafkaUnavailable."""
    attempts = attempts or kafka_connect_attempts()
    delay = 0.5
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            await admin.start()
            return admin
        except KafkaConnectionError as error:
            await admin.close()
            if attempt == attempts:
                raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap} after {attempt} attempts: {error}") \
                    from error
            log.warning("Kafka not reachable yet, retrying", extra={"fields": {"bootstrap": bootstrap,
                                                                              "attempt": attempt}})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], attempts: int | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = await connect_admin(bootstrap, attempts)
    try:
        existing = set(await admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.topic_configs())
            for spec in wanted
        ]
        response = await admin.create_topics(new)
        created = []
        for name, code, message in _topic_errors(response):
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                raise KafkaError(f"could not create topic {name}: error {code}: {message}")
        if created:
            log.info("topics created", extra={"fields": {"topics": created}})
        return created
    finally:
        await admin.close()


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    out = []
    for item in getattr(response, "topic_errors", []):
        name, code = item[0], item[1]
        message = item[2] if len(item) > 2 else None
        out.append((name, code, message))
    return out


async def is_embedded_broker(bootstrap: str) -> bool:
    """Whether `bootstrap` is a Tansu broker (cluster id `tansu_cluster`, as the embedded broker starts it)."""
    admin = await connect_admin(bootstrap)
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return str(cluster.get("cluster_id", "")).startswith("tansu")
