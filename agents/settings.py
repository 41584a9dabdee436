"""Settings from the environment (and CLI flags, which override). One place that names every variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from agents.kafka_security import KafkaSecurity

BOOTSTRAP_ENV = "TAILWATCH_KAFKA_BOOTSTRAP"
CONNECT_ATTEMPTS_ENV = "TAILWATCH_KAFKA_CONNECT_ATTEMPTS"


def kafka_connect_attempts() -> int:
    """How many times a command tries to reach Kafka before it exits 3 (default 5, about 8 s; at least 1)."""
    try:
        return max(1, int(os.environ.get(CONNECT_ATTEMPTS_ENV, "5")))
    except ValueError:
        return 5


TABLE_VALUE_MAX_BYTES_ENV = "TAILWATCH_TABLE_VALUE_MAX_BYTES"


def table_value_max_bytes() -> int:
    """The largest changelog message the worker writes for a table value (default 512 KiB, at least 4 KiB); larger
    values go as pieces (`agents/table_values.py`). Lower it for a Kafka whose `message.max.bytes` is lower."""
    from agents.table_values import TABLE_VALUE_MAX_BYTES  # noqa: PLC0415 - settings stay import-light

    try:
        return max(4096, int(os.environ.get(TABLE_VALUE_MAX_BYTES_ENV, TABLE_VALUE_MAX_BYTES)))
    except ValueError:
        return TABLE_VALUE_MAX_BYTES


@dataclass(frozen=True)
class KafkaSettings:
    """Where Kafka is and how tailwatch's topics look. No bootstrap address → the embedded broker is started."""

    bootstrap: str | None = field(default_factory=lambda: os.environ.get(BOOTSTRAP_ENV) or None)
    topic_prefix: str = field(default_factory=lambda: os.environ.get("TAILWATCH_TOPIC_PREFIX", "tailwatch"))
    partitions: int = field(default_factory=lambda: int(os.environ.get("TAILWATCH_PARTITIONS", "4")))
    replication_factor: int = field(
        default_factory=lambda: int(os.environ.get("TAILWATCH_REPLICATION_FACTOR", "1")))
    create_topics: bool = True  # False: use existing topics only (a managed cluster where tailwatch may not create)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # agents/config_file.py builds it from settings
    config_file: str | None = None  # the tailwatch.yaml these settings were read from (absolute), for children

    def with_bootstrap(self, bootstrap: str) -> KafkaSettings:
        """The same settings for a resolved address (the embedded broker's, when none was configured)."""
        return replace(self, bootstrap=bootstrap)

    def child_env(self) -> dict[str, str]:
        """The environment a child process (worker, notifier) needs to read these same settings: the file, the
        address and create_topics. Security settings and secrets reach it through the file and the inherited
        environment, never its command line."""
        env = {BOOTSTRAP_ENV: self.bootstrap or "", "TAILWATCH_KAFKA_CREATE_TOPICS": str(self.create_topics).lower()}
        if self.config_file:
            env["TAILWATCH_CONFIG"] = self.config_file
        return env

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"

    @property
    def logs_topic(self) -> str:
        return self.topic("logs")

    @property
    def deadletter_topic(self) -> str:
        return self.topic("deadletter")
