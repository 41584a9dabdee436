"""Creating tailwatch's topics when they are missing (or, where tailwatch may not create topics, naming them)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ClusterAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from agents.kafka_clients import PLAINTEXT, admin_client
from agents.kafka_security import KafkaSecurity, SecurityProtocol
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


# Compacted topics that hold state (the notifier's deliveries ledger, the worker's table changelogs): on Apache Kafka
# these make compaction actually run, so a reader at start (a restarted notifier, a worker restoring its tables) reads
# the live keys plus about an hour of writes, not the topic's whole history: segments roll hourly (the active one is
# never compacted), a segment is compacted within an hour of being written, and tombstones are dropped an hour after
# compaction. Tansu ignores them (it does not compact). Topics that exist already keep their configs.
STATE_TOPIC_CONFIGS = {"segment.ms": "3600000", "max.compaction.lag.ms": "3600000",
                       "delete.retention.ms": "3600000", "min.cleanable.dirty.ratio": "0.5"}


class KafkaUnavailable(RuntimeError):
    """Kafka could not be reached: the message names the address and how long tailwatch tried."""


TOPICS_MISSING = "topics-missing"
NOT_AUTHORIZED = "not-authorized"
CREATE_FAILED = "topic-creation-failed"
AUTHORIZATION_CODES = {TopicAuthorizationFailedError.errno, ClusterAuthorizationFailedError.errno}


class TopicsUnusable(RuntimeError):
    """tailwatch's topics are missing and may not (or could not) be created; `reason` is one of TOPICS_MISSING,
    NOT_AUTHORIZED, CREATE_FAILED, and the message names every topic concerned."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


async def connect_admin(bootstrap: str, attempts: int | None = None, timeout_s: float = 30.0, *,
                        security: KafkaSecurity = PLAINTEXT) -> AIOKafkaAdminClient:
    """An admin client, after at most `attempts` tries with growing pauses (default: TAILWATCH_KAFKA_CONNECT_ATTEMPTS,
    else 5); else KafkaUnavailable."""
    attempts = attempts or kafka_connect_attempts()
    delay = 0.5
    for attempt in range(1, attempts + 1):
        admin = admin_client(bootstrap, security=security, request_timeout_ms=int(timeout_s * 1000))
        try:
            await admin.start()
            return admin
        except KafkaConnectionError as error:
            await admin.close()
            refused = await _refusal(bootstrap, security)
            if refused is not None:  # wrong credentials or certificates: retrying cannot help
                raise KafkaUnavailable(f"Kafka at {bootstrap} refused tailwatch: {refused}") from None
            if attempt == attempts:
                raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap} after {attempt} attempts: {error}") \
                    from error
            log.warning("Kafka not reachable yet, retrying", extra={"fields": {"bootstrap": bootstrap,
                                                                              "attempt": attempt}})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


async def _refusal(bootstrap: str, security: KafkaSecurity, timeout_s: float = 5.0) -> str | None:
    """Why a secured connection failed, when it is the settings' fault (TLS verification, authentication, a bad
    certificate file) rather than a broker not up yet; None otherwise (and always for PLAINTEXT). aiokafka's
    bootstrap error hides the reason, so one bounded raw connection tells it (agents/kafka_check.py)."""
    if security.protocol is SecurityProtocol.PLAINTEXT:
        return None
    from agents import kafka_check  # noqa: PLC0415 - kafka_check imports this module

    try:
        await kafka_check.first_connection(bootstrap, security, timeout_s)
    except kafka_check.ClusterCheckFailed as failure:
        settings_fault = (kafka_check.AUTH_FAILED, kafka_check.TLS_FAILED, kafka_check.BAD_SETTINGS)
        return f"{failure.reason}: {failure}" if failure.reason in settings_fault else None
    return None


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], attempts: int | None = None, *,
                        security: KafkaSecurity = PLAINTEXT, create: bool = True) -> list[str]:
    """Create the topics that do not exist yet (returns the names created); with `create` false, create nothing
    and raise TopicsUnusable naming the missing ones."""
    admin = await connect_admin(bootstrap, attempts, security=security)
    try:
        return await reconcile_topics(admin, specs, create)
    finally:
        await admin.close()


async def reconcile_topics(admin: AIOKafkaAdminClient, specs: list[TopicSpec], create: bool,
                           timeout_s: float | None = None) -> list[str]:
    """The one place that creates tailwatch's topics: those of `specs` the cluster does not list are created
    (`create`), or named in TopicsUnusable(TOPICS_MISSING). Returns the names created."""
    existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
    wanted = [spec for spec in specs if spec.name not in existing]
    if not wanted:
        return []
    if not create:
        raise TopicsUnusable(TOPICS_MISSING, "topics missing (kafka.create_topics is false; create them, or grant "
                             "Describe on them if they exist): " + ", ".join(spec.name for spec in wanted))
    new = [NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.topic_configs())
           for spec in wanted]
    response = await asyncio.wait_for(admin.create_topics(new), timeout_s)
    created, denied, failed = [], [], []
    for name, code, message in _topic_errors(response):
        if code == 0:
            created.append(name)
        elif code in AUTHORIZATION_CODES:
            denied.append(name)
        elif code != TOPIC_ALREADY_EXISTS:
            failed.append(f"{name} (error {code}: {message or ''})")
    if denied:
        raise TopicsUnusable(NOT_AUTHORIZED, "not authorized to create (or describe) topics: " + ", ".join(denied)
                             + " — grant Create and Describe on them, or create them and set "
                             "kafka.create_topics: false")
    if failed:
        raise TopicsUnusable(CREATE_FAILED, "could not create topics: " + ", ".join(failed))
    if created:
        log.info("topics created", extra={"fields": {"topics": created}})
    return created


def _topic_errors(response: object) -> list[tuple[str, int, str | None]]:
    out = []
    for item in getattr(response, "topic_errors", []):
        name, code = item[0], item[1]
        message = item[2] if len(item) > 2 else None
        out.append((name, code, message))
    return out


async def is_embedded_broker(bootstrap: str, *, security: KafkaSecurity = PLAINTEXT) -> bool:
    """Whether `bootstrap` is a Tansu broker (cluster id `tansu_cluster`, as the embedded broker starts it)."""
    admin = await connect_admin(bootstrap, security=security)
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return str(cluster.get("cluster_id", "")).startswith("tansu")
