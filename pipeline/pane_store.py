"""The panes of many endpoints: records in (in bulk), closed panes out as the watermark passes their end.

Lateness is decided per record, from the watermark ingest stamped on it: a record whose pane ended at or
before that watermark is late, is not counted in its pane, and adds one to `late_dropped` of its endpoint's
pane that holds the watermark (still open, by the batching invariant). So the same input gives the same panes
however it was chunked, batched, partitioned or replayed.

Closed panes are kept per endpoint for `retention_ms` (the longest window a rule reads) and then evicted,
so memory stays bounded by endpoints × retention. They are held compact (`pipeline.held_panes`: ~0.3 KB a quiet
pane where a `ClosedPane` took ~1.2 KB; the digests of an endpoint's `RECENT_PANES` newest, which the default
rules' 1- and 5-minute windows read at every close, stay as they are) and merged back exactly for windows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from pipeline.held_panes import HeldPane, Sharing, compact_digests, hold, merge_held
from pipeline.log_columns import NO_MARK, LogColumns, as_columns
from pipeline.pane_aggregation import count_into
from pipeline.pane_records import Records
from pipeline.panes import ClosedPane, OpenPane
from pipeline.windows import PANE_MS, day_start, pane_start

GroupKey = tuple[str, str]  # (service, endpoint)
DEFAULT_RETENTION_MS = 60 * 60_000
RECENT_PANES = 5  # an endpoint's newest panes keep their digests' bytes: the default rules' windows read them


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
        self.history: dict[GroupKey, deque[HeldPane]] = {}  # closed panes per endpoint, oldest first
        self.sharing = Sharing()  # equal parts of held panes as one object
        self.rows_read_today: dict[GroupKey, tuple[int, int]] = {}  # key -> (day start, rows read)
        self.closed_until_ms: int | None = None  # every pane ending at or before this is closed
        self.evicted: list[tuple[str, str, int]] = []  # closed panes dropped by the last close_until

    def add(self, records: Records | LogColumns) -> int:
        """Count records into their panes; returns how many were late.

        A record is late when its pane ended at or before its watermark (the store's `closed_until_ms` at least),
        that is when its event time is before the start of the watermark's pane. Both are decided for the whole
        batch at once, on its columns (`pipeline.log_columns`; parsed dicts and decoded `PaneRecord`s are turned
        into columns first), and the records that are not late are counted by `pane_aggregation.count_into`."""
        batch = as_columns(records)
        if not len(batch):
            return 0
        pane_ms = self.pane_ms
        stamps = batch.event_time_ms
        starts = stamps - stamps % pane_ms
        marks = batch.watermark_ms
        if self.closed_until_ms is not None:
            marks = np.maximum(marks, self.closed_until_ms)  # NO_MARK is below every floor
        stamped = marks != NO_MARK
        late = stamped & (stamps < marks - marks % pane_ms)
        if not late.any():
            count_into(batch, starts, pane_ms, self._pane_of)  # no record's pane can have closed
            return 0
        endpoints = batch.endpoints
        for index, mark in zip(np.flatnonzero(late).tolist(), marks[late].tolist(), strict=True):
            self._pane_of((*endpoints[batch.endpoint[index]], mark - mark % pane_ms)).late_dropped += 1
        kept = ~late
        count_into(batch.take(kept), starts[kept], pane_ms, self._pane_of)
        return int(late.sum())

    def _pane_of(self, key: tuple[str, str, int]) -> OpenPane:
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
        return self._close([key for key in self.open if key[2] + self.pane_ms <= watermark_ms], watermark_ms)

    def close_all(self) -> list[ClosedPaneEvent]:
        """Close every open pane (every producer has ended): the panes that exist, not the future — afterwards
        `closed_until_ms` is the end of the newest pane closed, so later input is judged by its own stamps."""
        self.evicted = []
        if not self.open:
            return []
        newest_end = max(start for _service, _endpoint, start in self.open) + self.pane_ms
        if self.closed_until_ms is None or newest_end > self.closed_until_ms:
            self.closed_until_ms = newest_end
        return self._close(list(self.open), newest_end)

    def _close(self, keys: list[tuple[str, str, int]], horizon_ms: int) -> list[ClosedPaneEvent]:
        due = sorted((start, service, endpoint) for (service, endpoint, start) in keys)
        events = []
        for start, service, endpoint in due:
            closed = self.open.pop((service, endpoint, start)).close()
            group = (service, endpoint)
            self.keep(service, endpoint, start, closed)
            events.append(ClosedPaneEvent(service, endpoint, start, start + self.pane_ms, closed,
                                          self._rows_today(group, start, closed.d1_rows_read)))
        # Rules read the windows of the panes just closed after this returns: keep what the oldest of them needs.
        # Evicting from the watermark instead cut those windows short whenever it jumped more than a pane ahead
        # (e.g. the end of input), so live and replay, whose watermarks jump differently, disagreed.
        self._evict(min(horizon_ms, due[0][0] + self.pane_ms) if due else horizon_ms)
        return events

    def keep(self, service: str, endpoint: str, start_ms: int, pane: ClosedPane) -> None:
        """Hold a closed pane for windows (after the panes held for its endpoint, which must be older); the pane
        that this makes older than the `RECENT_PANES` newest has its digests compacted."""
        panes = self.history.setdefault((service, endpoint), deque())
        panes.append(hold(start_ms, pane, self.sharing))
        if len(panes) > RECENT_PANES:
            compact_digests(panes[-RECENT_PANES - 1], self.sharing)

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
            while panes and panes[0].start_ms < horizon:
                self.evicted.append((*group, panes.popleft().start_ms))
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
        return merge_held(pane for pane in panes if start <= pane.start_ms < end_ms)

    def panes_held(self) -> int:
        return len(self.open) + sum(len(panes) for panes in self.history.values())
