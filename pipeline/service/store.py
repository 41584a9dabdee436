"""Service panes: the endpoint panes of one service and minute, merged when the minute is complete.

An endpoint pane waits in its open service pane until the stage's horizon passes the pane's end; then the service
pane closes with the endpoint panes merged in endpoint-name order (counts added, digests merged), so its content
does not depend on the order the endpoint panes arrived in. The endpoints merged into a pane are remembered while
it is open and, once closed, for `retention_ms` with the closed pane: an endpoint pane seen again is a duplicate
(skipped), one whose service pane has already closed without it is late (counted on the service's next pane to
close, never merged). Closed panes are kept per service for `retention_ms` (the longest window a rule reads).
Bound: services × (open minutes + retention) panes, each holding its endpoint names.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.metrics import DigestOut, window_metrics
from pipeline.pane_codec import closed_from_dict, closed_to_dict
from pipeline.pane_store import DEFAULT_RETENTION_MS
from pipeline.panes import ClosedPane, PaneCounts
from pipeline.sketches import from_dict, to_dict
from pipeline.windows import PANE_MS, day_start, pane_start

Added = Literal["merged", "duplicate", "late"]


@dataclass(frozen=True, slots=True)
class ServicePaneEvent:
    """A service pane that just closed: its merged stats, the endpoints merged into it (sorted), the service's D1
    rows read that UTC day so far, and the late endpoint panes counted on it."""

    service: str
    start_ms: int
    end_ms: int
    pane: ClosedPane
    endpoints: tuple[str, ...]
    d1_rows_read_today: int
    late_endpoint_panes: int = 0


def pane_of_snapshot(value: dict[str, Any]) -> ClosedPane:
    """A `PaneSnapshot` dict back to the closed pane it was made from (digests from the `tdigest` dict format)."""
    pane = ClosedPane(duration_digest=from_dict(value["duration_digest"]), cpu_digest=from_dict(value["cpu_digest"]),
                      d1_digest=from_dict(value["d1_digest"]))
    pane.add_counts(PaneCounts(
        total=value["total"], classes=dict(value["status_class"]),
        status={int(code): count for code, count in value["status"].items()}, outcome=dict(value["outcome"]),
        duration_sum_ms=value.get("duration_sum_ms", 0.0), duration_count=value.get("duration_count", 0),
        d1_queries=value["d1_queries"], d1_reads=value["d1_reads"], d1_writes=value["d1_writes"],
        d1_connection_failures=value["d1_connection_failures"], d1_rows_read=value["d1_rows_read"],
        d1_rows_written=value["d1_rows_written"], late_dropped=value["late_dropped"]))
    return pane


def pane_as_published(pane: ClosedPane) -> ClosedPane:
    """A copy of a closed endpoint pane as `pane_of_snapshot` reads it back from its snapshot: the snapshot rounds
    the duration sum to 3 decimals; everything else (digests included) survives the JSON round trip exactly."""
    copy = ClosedPane(duration_digest=pane.duration_digest, cpu_digest=pane.cpu_digest, d1_digest=pane.d1_digest)
    copy.add_counts(pane)
    copy.duration_sum_ms = round(pane.duration_sum_ms, 3)
    return copy


def service_snapshot(event: ServicePaneEvent, digest: DigestOut = to_dict) -> dict[str, Any]:
    """A dict shaped like `schemas.metrics.ServicePaneSnapshot` (digests as `pipeline.metrics.snapshot` says)."""
    return {"v": 1, "service": event.service,
            **window_metrics(event.pane, event.start_ms, event.end_ms, event.d1_rows_read_today, digest),
            "endpoints": len(event.endpoints), "late_endpoint_panes": event.late_endpoint_panes}


def service_pane_to_dict(event: ServicePaneEvent) -> dict[str, Any]:
    """A closed service pane, JSON-ready, for the caller's table (given back to `ServiceOperator.restore`)."""
    return {"service": event.service, "start_ms": event.start_ms, "end_ms": event.end_ms,
            "pane": closed_to_dict(event.pane), "endpoints": list(event.endpoints),
            "d1_rows_read_today": event.d1_rows_read_today, "late_endpoint_panes": event.late_endpoint_panes}


def service_pane_from_dict(data: dict[str, Any]) -> ServicePaneEvent:
    return ServicePaneEvent(data["service"], data["start_ms"], data["end_ms"], closed_from_dict(data["pane"]),
                            tuple(data["endpoints"]), data["d1_rows_read_today"], data["late_endpoint_panes"])


class ServiceStore:
    def __init__(self, pane_ms: int = PANE_MS, retention_ms: int = DEFAULT_RETENTION_MS) -> None:
        if retention_ms < pane_ms:
            raise ValueError("retention must hold at least one pane")
        self.pane_ms = pane_ms
        self.retention_ms = retention_ms
        self.open: dict[tuple[str, int], dict[str, ClosedPane]] = {}  # (service, start) -> endpoint -> its pane
        self.history: dict[str, deque[ServicePaneEvent]] = {}  # closed panes per service, oldest first
        self.rows_read_today: dict[str, tuple[int, int]] = {}  # service -> (day start, rows read)
        self.late_pending: dict[str, int] = {}  # service -> late endpoint panes not yet counted on a closed pane
        self.closed_until_ms: int | None = None  # every service pane ending at or before this is closed
        self.evicted: list[tuple[str, int]] = []  # closed panes dropped by the last close

    def add(self, service: str, endpoint: str, start_ms: int, pane: ClosedPane) -> Added:
        """One endpoint pane: merged into its open service pane, or skipped as a duplicate, or counted late."""
        horizon = self.closed_until_ms
        if horizon is not None and start_ms + self.pane_ms <= horizon:
            if any(e.start_ms == start_ms and endpoint in e.endpoints for e in self.history.get(service, ())):
                return "duplicate"
            self.late_pending[service] = self.late_pending.get(service, 0) + 1
            return "late"
        panes = self.open.setdefault((service, start_ms), {})
        if endpoint in panes:
            return "duplicate"
        panes[endpoint] = pane
        return "merged"

    def close_until(self, horizon_ms: int) -> list[ServicePaneEvent]:
        """Close every service pane ending at or before `horizon_ms`, oldest first (then by service); the caller
        calls `evict` once it has read their windows."""
        self.evicted = []
        if self.closed_until_ms is not None and horizon_ms <= self.closed_until_ms:
            return []
        self.closed_until_ms = horizon_ms
        return self._close([key for key in self.open if key[1] + self.pane_ms <= horizon_ms], horizon_ms)

    def close_all(self) -> list[ServicePaneEvent]:
        """Close every open service pane (every logs partition has ended): the panes that exist, not the future."""
        self.evicted = []
        if not self.open:
            return []
        newest_end = max(start for _service, start in self.open) + self.pane_ms
        if self.closed_until_ms is None or newest_end > self.closed_until_ms:
            self.closed_until_ms = newest_end
        return self._close(list(self.open), newest_end)

    def _close(self, keys: list[tuple[str, int]], horizon_ms: int) -> list[ServicePaneEvent]:
        due = sorted((start, service) for service, start in keys)
        events = []
        for start, service in due:
            panes = self.open.pop((service, start))
            endpoints = tuple(sorted(panes))
            merged = ClosedPane.merge(panes[endpoint] for endpoint in endpoints)
            event = ServicePaneEvent(service, start, start + self.pane_ms, merged, endpoints,
                                     self._rows_today(service, start, merged.d1_rows_read),
                                     self.late_pending.pop(service, 0))
            self.history.setdefault(service, deque()).append(event)
            events.append(event)
        return events

    def _rows_today(self, service: str, start: int, rows: int) -> int:
        day = day_start(start)
        seen_day, total = self.rows_read_today.get(service, (day, 0))
        total = total + rows if seen_day == day else rows
        self.rows_read_today[service] = (day, total)
        return total

    def evict(self) -> None:
        """Drop the closed panes older than the retention before the horizon (`evicted` lists them): called once
        the rules have read the windows of the panes just closed — a backlog closes hours at once, and holding them
        until the next close would hold the whole backlog."""
        if self.closed_until_ms is not None:
            self._evict(self.closed_until_ms)

    def _evict(self, horizon_ms: int) -> None:
        oldest_kept = pane_start(horizon_ms, self.pane_ms) - self.retention_ms
        self.evicted = []
        for service in list(self.history):
            panes = self.history[service]
            while panes and panes[0].start_ms < oldest_kept:
                self.evicted.append((service, panes.popleft().start_ms))
            if not panes:
                del self.history[service]
        today = day_start(horizon_ms)
        for service, (day, _rows) in list(self.rows_read_today.items()):
            if day < today:
                del self.rows_read_today[service]

    def window(self, service: str, end_ms: int, window_ms: int) -> ClosedPane:
        """The closed service panes of `[end_ms - window_ms, end_ms)` merged oldest first (empty when none)."""
        start = end_ms - window_ms
        return ClosedPane.merge(e.pane for e in self.history.get(service, ()) if start <= e.start_ms < end_ms)

    def panes_held(self) -> int:
        return len(self.open) + sum(len(panes) for panes in self.history.values())

    def to_json(self) -> dict[str, Any]:
        """Everything but the closed panes (the caller keeps those as the steps gave them)."""
        return {
            "closed_until_ms": self.closed_until_ms,
            "open": [[service, start, {endpoint: closed_to_dict(pane) for endpoint, pane in sorted(panes.items())}]
                     for (service, start), panes in sorted(self.open.items())],
            "rows_read_today": {service: list(value) for service, value in sorted(self.rows_read_today.items())},
            "late_pending": dict(sorted(self.late_pending.items())),
        }

    def load(self, data: dict[str, Any], closed: list[ServicePaneEvent]) -> None:
        """From `to_json()` and the closed panes kept since; panes that closed after it are open in it (they close
        again as the messages after it are applied again), so only those within its horizon are taken."""
        horizon: int | None = data["closed_until_ms"]
        self.closed_until_ms = horizon
        self.open = {(service, start): {endpoint: closed_from_dict(pane) for endpoint, pane in panes.items()}
                     for service, start, panes in data["open"]}
        self.rows_read_today = {service: (day, rows) for service, (day, rows) in data["rows_read_today"].items()}
        self.late_pending = dict(data["late_pending"])
        self.history = {}
        for event in sorted(closed, key=lambda e: (e.start_ms, e.service)):
            if horizon is not None and event.end_ms <= horizon:
                self.history.setdefault(event.service, deque()).append(event)
