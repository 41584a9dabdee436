"""`PaneTotals`: closed-pane snapshots (the metrics topic's `PaneSnapshot` dicts) summed per endpoint and minute.

`SnapshotStore` holds the points of either stage (`ServiceTotals` in `services.py` is the service stage's).
A snapshot is keyed by (service, endpoint, window_start_ms): one delivered again (at-least-once) replaces the
identical copy, so duplicates never double-count. With `horizon_ms`, panes older than the newest pane's end minus
the horizon are dropped, which bounds memory for a live dashboard. Latency percentiles of longer windows merge the
panes' t-digests oldest first, exactly as the stream worker's windows do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pipeline.sketches import Sketch, from_dict, merge_digests, quantiles

GroupKey = tuple[str, str]  # (service, endpoint)


class Point(Protocol):
    @property
    def key(self) -> tuple[str, str, int]: ...  # what makes it unique; [2] is its start
    @property
    def end_ms(self) -> int: ...


P = TypeVar("P", bound=Point)


@dataclass(frozen=True, slots=True)
class PanePoint:
    """What a report keeps of one snapshot: exact counts, its own percentiles and its latency digest."""

    service: str
    endpoint: str
    start_ms: int
    end_ms: int
    total: int
    responses: int
    count_4xx: int
    count_5xx: int
    status: dict[str, int]
    no_response: int  # clean outcome, no status (class `none`)
    late_dropped: int
    duration_sum_ms: float
    duration_count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    digest: Sketch | None

    @staticmethod
    def of(snapshot: dict[str, Any]) -> PanePoint:
        digest = snapshot.get("duration_digest")
        return PanePoint(
            service=snapshot["service"], endpoint=snapshot["endpoint"],
            start_ms=snapshot["window_start_ms"], end_ms=snapshot["window_end_ms"],
            total=snapshot["total"], responses=snapshot["responses"],
            count_4xx=snapshot["count_4xx"], count_5xx=snapshot["count_5xx"],
            status=dict(snapshot["status"]), no_response=snapshot["status_class"].get("none", 0),
            late_dropped=snapshot["late_dropped"],
            duration_sum_ms=float(digest["sum"]) if digest else 0.0,
            duration_count=int(digest["n_values"]) if digest else 0,
            p50_ms=snapshot["p50_ms"], p95_ms=snapshot["p95_ms"], p99_ms=snapshot["p99_ms"],
            digest=from_dict(digest),
        )

    @property
    def key(self) -> tuple[str, str, int]:
        return self.service, self.endpoint, self.start_ms

    @property
    def errors(self) -> int:
        return self.count_4xx + self.count_5xx

    @property
    def failed_without_status(self) -> int:
        """Requests the Worker failed without a status (counted as 5xx by the pipeline)."""
        return self.total - self.no_response - sum(self.status.values())


@dataclass(slots=True)
class EndpointSum:
    """One endpoint's panes added up; `digest` is their merged latency digest (oldest pane first)."""

    service: str
    endpoint: str
    total: int = 0
    responses: int = 0
    count_4xx: int = 0
    count_5xx: int = 0
    failed_without_status: int = 0
    no_response: int = 0
    late_dropped: int = 0
    duration_sum_ms: float = 0.0
    duration_count: int = 0
    status: dict[str, int] = field(default_factory=dict)
    digest: Sketch | None = None

    @property
    def errors(self) -> int:
        return self.count_4xx + self.count_5xx

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.responses if self.responses else None

    @property
    def avg_ms(self) -> float | None:
        return self.duration_sum_ms / self.duration_count if self.duration_count else None

    def percentiles(self) -> tuple[float | None, float | None, float | None]:
        p50, p95, p99 = quantiles(self.digest, (0.50, 0.95, 0.99))
        return p50, p95, p99


def sum_points(service: str, endpoint: str, points: Iterable[PanePoint]) -> EndpointSum:
    """Panes added up; pass them oldest first, so the merged digest is always the same."""
    total = EndpointSum(service, endpoint)
    listed = list(points)
    for point in listed:
        total.total += point.total
        total.responses += point.responses
        total.count_4xx += point.count_4xx
        total.count_5xx += point.count_5xx
        total.failed_without_status += point.failed_without_status
        total.no_response += point.no_response
        total.late_dropped += point.late_dropped
        total.duration_sum_ms += point.duration_sum_ms
        total.duration_count += point.duration_count
        for code, count in point.status.items():
            total.status[code] = total.status.get(code, 0) + count
    total.digest = merge_digests(point.digest for point in listed)
    return total


class SnapshotStore(Generic[P]):
    """Points by key: one delivered again replaces its identical copy; with `horizon_ms`, points starting before
    the newest point's end minus the horizon are dropped. `version` grows with every change."""

    def __init__(self, point_of: Callable[[dict[str, Any]], P], horizon_ms: int | None = None) -> None:
        self.point_of = point_of
        self.horizon_ms = horizon_ms
        self.points: dict[tuple[str, str, int], P] = {}
        self.newest_end_ms: int | None = None
        self.version = 0

    def add(self, snapshots: Iterable[dict[str, Any]]) -> int:
        """Add a batch of snapshot dicts; returns how many were new (not duplicates, not past the horizon)."""
        added = 0
        for snapshot in snapshots:
            point = self.point_of(snapshot)
            key = point.key
            if key not in self.points:
                added += 1
            self.points[key] = point
            if self.newest_end_ms is None or point.end_ms > self.newest_end_ms:
                self.newest_end_ms = point.end_ms
        self._evict()
        if added:
            self.version += 1
        return added

    def _evict(self) -> None:
        if self.horizon_ms is None or self.newest_end_ms is None:
            return
        floor = self.newest_end_ms - self.horizon_ms
        old = [key for key in self.points if key[2] < floor]
        for key in old:
            del self.points[key]

    def ordered(self) -> list[P]:
        """Every point, by (start, key)."""
        return [self.points[key] for key in sorted(self.points, key=lambda k: (k[2], k[0], k[1]))]


class PaneTotals(SnapshotStore[PanePoint]):
    """Endpoint snapshots in, per-endpoint sums and per-minute points out."""

    def __init__(self, horizon_ms: int | None = None) -> None:
        super().__init__(PanePoint.of, horizon_ms)

    def by_endpoint(self) -> dict[GroupKey, list[PanePoint]]:
        groups: dict[GroupKey, list[PanePoint]] = {}
        for point in self.ordered():
            groups.setdefault((point.service, point.endpoint), []).append(point)
        return groups

    def endpoint_sums(self) -> list[EndpointSum]:
        return [sum_points(service, endpoint, points)
                for (service, endpoint), points in sorted(self.by_endpoint().items())]
