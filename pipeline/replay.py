"""Offline replay: the live path's core, driven by files instead of Kafka.

Each source is stamped with its own watermark exactly as ingest stamps it; panes close as the slowest unfinished
source's watermark passes their end; when every source has ended, everything closes. Since lateness is decided
per record and closing never changes a pane's content, replay gives the snapshots the live workers give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.batching import DEFAULT_LATENESS_MS
from pipeline.pane_store import DEFAULT_RETENTION_MS, ClosedPaneEvent, PaneStore
from pipeline.watermarks import END_OF_INPUT_MS, SourceWatermark
from pipeline.windows import PANE_MS


class Replay:
    def __init__(self, lateness_ms: int = DEFAULT_LATENESS_MS, pane_ms: int = PANE_MS,
                 retention_ms: int = DEFAULT_RETENTION_MS) -> None:
        self.lateness_ms = lateness_ms
        self.store = PaneStore(pane_ms, retention_ms)
        self._sources: dict[str, SourceWatermark] = {}
        self._ended: set[str] = set()
        self.late = 0

    def feed(self, source: str, records: list[dict[str, Any]]) -> list[ClosedPaneEvent]:
        watermark = self._sources.get(source)
        if watermark is None:
            watermark = self._sources[source] = SourceWatermark(self.lateness_ms)
        watermark.stamp(records)
        self.late += self.store.add(records)
        return self._close()

    def end(self, source: str) -> list[ClosedPaneEvent]:
        self._sources.setdefault(source, SourceWatermark(self.lateness_ms))
        self._ended.add(source)
        return self._close()

    def _close(self) -> list[ClosedPaneEvent]:
        running = [mark.value for name, mark in self._sources.items() if name not in self._ended]
        if not running:
            return self.store.close_until(END_OF_INPUT_MS)
        if any(value is None for value in running):
            return []
        return self.store.close_until(min(value for value in running if value is not None))


def replay_all(inputs: Iterable[tuple[str, Iterable[list[dict[str, Any]]]]],
               lateness_ms: int = DEFAULT_LATENESS_MS) -> list[ClosedPaneEvent]:
    """Every closed pane of the given sources, each given as (name, record lists), read one after another."""
    replay = Replay(lateness_ms)
    events: list[ClosedPaneEvent] = []
    for source, chunks in inputs:
        for records in chunks:
            events.extend(replay.feed(source, records))
        events.extend(replay.end(source))
    return events
