"""The panes of many endpoints: records in (in bulk), closed panes out as the watermark passes their end.

Lateness is decided per record, from the watermark ingest stamped on it: a record whose pane ended at or
before that watermark is late, is not counted in its pane, and adds one to `late_dropped` of its endpoint's
pane that holds the watermark (still open, by the batching invariant). So the same input gives the same panes
however it was chunked, batched, partitioned or replayed.

Closed panes are kept per endpoint for `retention_ms` (the longest window a rule reads) and then evicted,
so memory stays bounded by endpoints × retention.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from pipeline.panes import ClosedPane, OpenPane
from pipeline.windows import PANE_MS, day_start, pane_start

GroupKey = tuple[str, str]  # (service, endpoint)
_EVENT_TIME = itemgetter("event_time_ms")


def _watermark_of(record: dict[str, Any]) -> int | None:
    mark: int | None = record.get("watermark_ms")
    return mark
DEFAULT_RETENTION_MS = 60 * 60_000


@dataclass(frozen=True, slots=True)
class ClosedPaneEvent:
    """A pane that just closed: which endpoint, when, its stats, and D1 rows read that UTC day so far."""

    service: str
    endpoint: str
    start_ms: int
    end_ms: int
    pane: ClosedPane
    d1_rows_read_today: int


class PaneStore:
    def __init__(self, pane_ms: int = PANE_MS, retention_ms: int = DEFAULT_RETENTION_MS) -> None:
        if retention_ms < pane_ms:
            raise ValueError("retention must hold at least one pane")
        self.pane_ms = pane_ms
        self.retention_ms = retention_ms
        self.open: dict[tuple[str, str, int], OpenPane] = {}
        self.history: dict[GroupKey, deque[tuple[int, ClosedPane]]] = {}
        self.rows_read_today: dict[GroupKey, tuple[int, int]] = {}  # key -> (day start, rows read)
        self.closed_until_ms: int | None = None  # every pane ending at or before this is closed
        self.evicted: list[tuple[str, str, int]] = []  # closed panes dropped by the last close_until

    def add(self, records: list[dict[str, Any]]) -> int:
        """Count records into their panes; returns how many were late."""
        if not records:
            return 0
        pane_ms = self.pane_ms
        floor = self.closed_until_ms
        marks = [mark for mark in map(_watermark_of, records) if mark is not None]
        newest_mark = max(marks) if marks else None
        if floor is not None and (newest_mark is None or newest_mark < floor):
            newest_mark = floor
        oldest = min(map(_EVENT_TIME, records))
        if newest_mark is None or oldest - oldest % pane_ms + pane_ms > newest_mark:
            late = 0  # no record's pane can have closed: skip the per-record check
            self._count(records)
        else:
            late = self._count_checking_lateness(records, floor)
        return late

    def _count(self, records: list[dict[str, Any]]) -> None:
        pane_ms = self.pane_ms
        groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for record in records:
            stamp = record["event_time_ms"]
            key = (record["service"], record["endpoint"], stamp - stamp % pane_ms)
            group = groups.get(key)
            if group is None:
                groups[key] = [record]
            else:
                group.append(record)
        for key, members in groups.items():
            pane = self.open.get(key)
            if pane is None:
                pane = self.open[key] = OpenPane()
            pane.add_many(members)

    def _count_checking_lateness(self, records: list[dict[str, Any]], floor: int | None) -> int:
        pane_ms = self.pane_ms
        on_time = []
        late = 0
        for record in records:
            stamp = record["event_time_ms"]
            mark = record.get("watermark_ms")
            if floor is not None and (mark is None or mark < floor):
                mark = floor
            if mark is not None and stamp - stamp % pane_ms + pane_ms <= mark:
                late += 1
                self._pane(record["service"], record["endpoint"], mark - mark % pane_ms).late_dropped += 1
            else:
                on_time.append(record)
        self._count(on_time)
        return late

    def _pane(self, service: str, endpoint: str, start: int) -> OpenPane:
        key = (service, endpoint, start)
        pane = self.open.get(key)
        if pane is None:
            pane = self.open[key] = OpenPane()
        return pane

    def close_until(self, watermark_ms: int) -> list[ClosedPaneEvent]:
        """Close every pane that ends at or before `watermark_ms`, oldest first (then by service, endpoint)."""
        self.evicted = []
        if self.closed_until_ms is not None and watermark_ms <= self.closed_until_ms:
            return []
        self.closed_until_ms = watermark_ms
        due = sorted((start, service, endpoint) for (service, endpoint, start) in self.open
                     if start + self.pane_ms <= watermark_ms)
        events = []
        for start, service, endpoint in due:
            closed = self.open.pop((service, endpoint, start)).close()
            group = (service, endpoint)
            self.history.setdefault(group, deque()).append((start, closed))
            events.append(ClosedPaneEvent(service, endpoint, start, start + self.pane_ms, closed,
                                          self._rows_today(group, start, closed.d1_rows_read)))
        # Evict from the newest pane just closed, not from the watermark: the rules read these panes' windows after
        # this returns, and at the end of input the watermark jumps to END_OF_INPUT_MS (which evicted every pane
        # first, so the last panes' windows were empty and live alerts differed from replay's).
        self._evict(min(watermark_ms, due[-1][0] + self.pane_ms) if due else watermark_ms)
        return events

    def _rows_today(self, group: GroupKey, start: int, rows: int) -> int:
        day = day_start(start)
        seen_day, total = self.rows_read_today.get(group, (day, 0))
        total = total + rows if seen_day == day else rows
        self.rows_read_today[group] = (day, total)
        return total

    def _evict(self, watermark_ms: int) -> None:
        horizon = pane_start(watermark_ms, self.pane_ms) - self.retention_ms
        self.evicted = []
        for group in list(self.history):
            panes = self.history[group]
            while panes and panes[0][0] < horizon:
                self.evicted.append((*group, panes.popleft()[0]))
            if not panes:
                del self.history[group]
        today = day_start(watermark_ms)
        for group, (day, _rows) in list(self.rows_read_today.items()):
            if day < today:
                del self.rows_read_today[group]

    def window(self, service: str, endpoint: str, end_ms: int, window_ms: int) -> ClosedPane:
        """The closed panes of `[end_ms - window_ms, end_ms)` merged (empty when none had traffic)."""
        start = end_ms - window_ms
        panes = self.history.get((service, endpoint), ())
        return ClosedPane.merge(pane for pane_start_ms, pane in panes if start <= pane_start_ms < end_ms)

    def panes_held(self) -> int:
        return len(self.open) + sum(len(panes) for panes in self.history.values())
