"""Event-time watermarks: a source's (max event time seen − allowed lateness), and a partition's (the least of
its producers' stamps, ignoring producers that finished).

Time comes from the input only. A finished producer (end of a file) no longer holds its partitions back; when
all have finished, everything closes (`END_OF_INPUT_MS`).

An idle producer — a crashed ingest that never sent its final batch, or a quiet Worker's tail — would hold its
partitions back forever. So a partition also notes when each producer's last message was *published* (the Kafka
message timestamp, passed in as `seen_ms`: part of the topic's contents, so a backtest over the topic decides
exactly as the live worker did) and, with `idle_ms`, leaves out producers not heard from for that long relative
to the newest message on the partition — unless every producer is idle, which changes nothing. A record of a
producer that comes back after its panes closed is counted late, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

END_OF_INPUT_MS = 2**62
DEFAULT_IDLE_PRODUCER_MS = 60_000  # a producer silent this long (in publish time) stops holding its partition


class SourceWatermark:
    """One input's watermark; `stamp` writes it into each record as the record is read."""

    def __init__(self, lateness_ms: int) -> None:
        if lateness_ms < 0:
            raise ValueError("lateness_ms must not be negative")
        self.lateness_ms = lateness_ms
        self.max_event_ms: int | None = None

    @property
    def value(self) -> int | None:
        return None if self.max_event_ms is None else self.max_event_ms - self.lateness_ms

    def stamp(self, records: Iterable[dict[str, Any]]) -> None:
        top = self.max_event_ms
        lateness = self.lateness_ms
        for record in records:
            stamp = record["event_time_ms"]
            if top is None or stamp > top:
                top = stamp
            record["watermark_ms"] = top - lateness
        self.max_event_ms = top


class PartitionWatermark:
    """A partition's watermark from the stamps of the producers writing to it."""

    def __init__(self, idle_ms: int = 0) -> None:
        """`idle_ms`: leave out producers whose last message is that much older than the newest (0: never)."""
        if idle_ms < 0:
            raise ValueError("idle_ms must not be negative")
        self.idle_ms = idle_ms
        self.producers: dict[str, int] = {}
        self.finished: set[str] = set()
        self.seen: dict[str, int] = {}  # producer → publish time of its last message (ms)
        self.newest_seen_ms: int | None = None

    def observe(self, producer: str, watermark_ms: int | None, final: bool = False,
                seen_ms: int | None = None) -> None:
        if seen_ms is not None and seen_ms >= 0:
            self.newest_seen_ms = seen_ms if self.newest_seen_ms is None else max(self.newest_seen_ms, seen_ms)
            if not final:
                self.seen[producer] = max(self.seen.get(producer, seen_ms), seen_ms)
        if final:
            self.finished.add(producer)
            self.producers.pop(producer, None)
            self.seen.pop(producer, None)
            return
        if watermark_ms is None or producer in self.finished:
            return
        previous = self.producers.get(producer)
        if previous is None or watermark_ms > previous:
            self.producers[producer] = watermark_ms

    def forget(self, producer: str) -> None:
        """Stop waiting for a producer (e.g. one known to be gone for good)."""
        self.producers.pop(producer, None)
        self.seen.pop(producer, None)

    def idle(self) -> set[str]:
        """The producers left out: not heard from for more than `idle_ms` before the newest message."""
        newest = self.newest_seen_ms
        if not self.idle_ms or newest is None:
            return set()
        return {producer for producer in self.producers
                if producer in self.seen and newest - self.seen[producer] > self.idle_ms}

    @property
    def value(self) -> int | None:
        if self.producers:
            idle = self.idle()
            active = [mark for producer, mark in self.producers.items() if producer not in idle]
            return min(active) if active else min(self.producers.values())
        return END_OF_INPUT_MS if self.finished else None
