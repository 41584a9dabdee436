"""`ServiceTotals`: the service stage's closed panes (`ServicePaneSnapshot` dicts, from a replay or the
`<prefix>.metrics.service` topic) summed per service, for the report's service rows.

A service pane is every endpoint pane of one service and minute merged, and closes only once every logs partition
has passed its end, so it is never partial: a service row's counts are exact sums of its panes' counts (equal to the
sums of the service's endpoint rows over the same minutes), its percentiles come from the panes' digests merged
oldest first. Keyed by (service, window_start_ms): a pane delivered again replaces its identical copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.report.snapshots import SnapshotStore
from pipeline.sketches import Sketch, from_dict, merge_digests, quantile, quantiles

# The service pane's counts that add up over minutes.
SUMMED = ("total", "responses", "count_2xx", "count_3xx", "count_4xx", "count_5xx", "count_404", "d1_queries",
          "d1_reads", "d1_writes", "d1_connection_failures", "d1_rows_read", "d1_rows_written", "late_dropped",
          "late_endpoint_panes", "duration_count")


@dataclass(frozen=True, slots=True)
class ServicePoint:
    """What a report keeps of one service pane: its counts, and its digests."""

    service: str
    start_ms: int
    end_ms: int
    counts: dict[str, int]
    endpoints: int
    duration_sum_ms: float
    d1_rows_read_today: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    duration_digest: Sketch | None
    cpu_digest: Sketch | None
    d1_digest: Sketch | None

    @staticmethod
    def of(snapshot: dict[str, Any]) -> ServicePoint:
        return ServicePoint(
            service=snapshot["service"], start_ms=snapshot["window_start_ms"], end_ms=snapshot["window_end_ms"],
            counts={name: int(snapshot.get(name, 0)) for name in SUMMED}, endpoints=snapshot["endpoints"],
            duration_sum_ms=float(snapshot.get("duration_sum_ms", 0.0)),
            d1_rows_read_today=snapshot["d1_rows_read_today"],
            p50_ms=snapshot["p50_ms"], p95_ms=snapshot["p95_ms"], p99_ms=snapshot["p99_ms"],
            duration_digest=from_dict(snapshot.get("duration_digest")),
            cpu_digest=from_dict(snapshot.get("cpu_digest")),
            d1_digest=from_dict(snapshot.get("d1_digest")),
        )

    @property
    def key(self) -> tuple[str, str, int]:
        return self.service, "", self.start_ms

    @property
    def total(self) -> int:
        return self.counts["total"]

    @property
    def errors(self) -> int:
        return self.counts["count_4xx"] + self.counts["count_5xx"]


@dataclass(slots=True)
class ServiceSum:
    """One service's panes added up (oldest first, so the merged digests are always the same)."""

    service: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMED, 0))
    panes: int = 0
    peak_minute: int = 0  # the busiest pane's requests (what a per-minute volume rule compares)
    max_endpoints: int = 0
    duration_sum_ms: float = 0.0
    d1_rows_read_today: int = 0  # the newest pane's: D1 rows read since 00:00 UTC of that day
    duration_digest: Sketch | None = None
    cpu_digest: Sketch | None = None
    d1_digest: Sketch | None = None

    @staticmethod
    def of(service: str, points: Iterable[ServicePoint]) -> ServiceSum:
        total = ServiceSum(service)
        listed = list(points)
        for point in listed:
            for name, count in point.counts.items():
                total.counts[name] += count
            total.panes += 1
            total.peak_minute = max(total.peak_minute, point.total)
            total.max_endpoints = max(total.max_endpoints, point.endpoints)
            total.duration_sum_ms += point.duration_sum_ms
            total.d1_rows_read_today = point.d1_rows_read_today
        total.duration_digest = merge_digests(point.duration_digest for point in listed)
        total.cpu_digest = merge_digests(point.cpu_digest for point in listed)
        total.d1_digest = merge_digests(point.d1_digest for point in listed)
        return total


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def service_row(total: ServiceSum, endpoints: int) -> dict[str, Any]:
    """The report's row of one service (`endpoints`: how many endpoint rows the report has for it)."""
    counts = total.counts
    responses = counts["responses"]
    p50, p95, p99 = quantiles(total.duration_digest, (0.50, 0.95, 0.99))
    return {
        "service": total.service, "requests": counts["total"], "responses": responses,
        "errors": counts["count_4xx"] + counts["count_5xx"], "count_2xx": counts["count_2xx"],
        "count_3xx": counts["count_3xx"], "count_4xx": counts["count_4xx"], "count_5xx": counts["count_5xx"],
        "count_404": counts["count_404"],
        "success_rate": _rate(counts["count_2xx"] + counts["count_3xx"], responses),
        "error_rate": _rate(counts["count_4xx"] + counts["count_5xx"], responses),
        "ratio_404": _rate(counts["count_404"], responses),
        "avg_ms": round(total.duration_sum_ms / counts["duration_count"], 3) if counts["duration_count"] else None,
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "cpu_p95_ms": quantile(total.cpu_digest, 0.95),
        "peak_minute_requests": total.peak_minute, "panes": total.panes, "endpoints": endpoints,
        "d1_queries": counts["d1_queries"], "d1_reads": counts["d1_reads"], "d1_writes": counts["d1_writes"],
        "d1_p95_ms": quantile(total.d1_digest, 0.95), "d1_connection_failures": counts["d1_connection_failures"],
        "d1_rows_read": counts["d1_rows_read"], "d1_rows_written": counts["d1_rows_written"],
        "d1_rows_read_today": total.d1_rows_read_today,
        "late_dropped": counts["late_dropped"], "late_endpoint_panes": counts["late_endpoint_panes"],
    }


class ServiceTotals(SnapshotStore[ServicePoint]):
    """Service snapshots in, per-service sums and per-minute points out."""

    def __init__(self, horizon_ms: int | None = None) -> None:
        super().__init__(ServicePoint.of, horizon_ms)

    def by_service(self) -> dict[str, list[ServicePoint]]:
        groups: dict[str, list[ServicePoint]] = {}
        for point in self.ordered():
            groups.setdefault(point.service, []).append(point)
        return groups

    def service_sums(self) -> list[ServiceSum]:
        return [ServiceSum.of(service, points) for service, points in sorted(self.by_service().items())]
