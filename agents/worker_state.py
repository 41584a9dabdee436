"""The stream worker's settings and the Faust pieces its stages share (see agents/stream_worker.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from faust.tables.manager import TableManager

from agents.rules_files import LoadedRules, load_rules
from agents.settings import KafkaSettings
from pipeline.pane_store import DEFAULT_RETENTION_MS
from pipeline.watermarks import DEFAULT_IDLE_PRODUCER_MS

CHECKPOINT_EVERY_S = 1.0


class PromptTableManager(TableManager):
    """Faust's table manager without the fixed 1 s pause it takes before starting recovery."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


@dataclass(frozen=True)
class WorkerSettings:
    kafka: KafkaSettings
    app_id: str = "tailwatch-metrics"
    store: str = "memory://"  # or "rocksdb://" (rocksdict) for large tables
    data_dir: str = "./tailwatch-data"
    web_port: int | None = None
    web_bind: str = "127.0.0.1"  # the web server's interface (0.0.0.0 in a container)
    session_timeout_s: float = 5.0  # the embedded broker answers the first JoinGroup after half of it
    rules: LoadedRules = field(default_factory=load_rules)
    retention_ms: int = DEFAULT_RETENTION_MS
    checkpoint_every_s: float = CHECKPOINT_EVERY_S
    idle_producer_ms: int = DEFAULT_IDLE_PRODUCER_MS  # see pipeline.watermarks: 0 waits for every producer


class PartitionContext:
    """Stands for a logs-topic event of one partition while the worker applies messages outside Faust's stream (the
    catch-up timer): Faust's table takes the changelog partition of every write from the current event."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition)


def published_ms(timestamp: float | None) -> int | None:
    """A Faust message's Kafka timestamp (seconds, float) in integer ms; None when the broker gave none."""
    return None if timestamp is None or timestamp < 0 else round(timestamp * 1000)
