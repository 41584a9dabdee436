"""Event-time watermarks: a source's (max event time seen − allowed lateness), and a partition's (the least of
its producers' stamps, ignoring producers that finished).

Time comes from the input only. A finished producer (end of a file) no longer holds its partitions back; when
all have finished, everything closes (`END_OF_INPUT_MS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

END_OF_INPUT_MS = 2**62


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

    def __init__(self) -> None:
        self.producers: dict[str, int] = {}
        self.finished: set[str] = set()

    def observe(self, producer: str, watermark_ms: int | None, final: bool = False) -> None:
        if final:
            self.finished.add(producer)
            self.producers.pop(producer, None)
            return
        if watermark_ms is None or producer in self.finished:
            return
        previous = self.producers.get(producer)
        if previous is None or watermark_ms > previous:
            self.producers[producer] = watermark_ms

    def forget(self, producer: str) -> None:
        """Stop waiting for a producer that went silent (the caller decides when: the one wall-clock rule)."""
        self.producers.pop(producer, None)

    @property
    def value(self) -> int | None:
        if self.producers:
            return min(self.producers.values())
        return END_OF_INPUT_MS if self.finished else None
