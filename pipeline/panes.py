"""One endpoint's one-minute pane: exact counts, and latency values that become t-digests when it closes.

`PaneCounts` is everything that adds up exactly (so panes merge into any longer window by addition);
`OpenPane` adds the raw values still arriving; `ClosedPane` holds their digests instead.

Status classes: a response's class is its first digit (`2xx` …). A request without a response counts as `none`
when the runtime's outcome says the client went away or all was well (`ok`, `canceled`,
`responseStreamDisconnected`), and as `5xx` when the Worker failed (`exception`, `exceededCpu`, …): a crashed
Worker is an error even when no status was recorded. Rates are over responses (`total − none`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.sketches import Sketch, digest_of, merge_digests

CLEAN_OUTCOMES = frozenset(("ok", "canceled", "responseStreamDisconnected", "log"))
_CLASS_OF_HUNDREDS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
CONNECTION_FAILED = "connection_failed"


def status_class(status: int | None, outcome: str) -> str:
    if status is None:
        return "none" if outcome in CLEAN_OUTCOMES else "5xx"
    return _CLASS_OF_HUNDREDS.get(status // 100, "other")


@dataclass(slots=True)
class PaneCounts:
    total: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    status: dict[int, int] = field(default_factory=dict)
    outcome: dict[str, int] = field(default_factory=dict)
    duration_sum_ms: float = 0.0
    duration_count: int = 0
    d1_queries: int = 0
    d1_reads: int = 0
    d1_writes: int = 0
    d1_connection_failures: int = 0
    d1_rows_read: int = 0
    d1_rows_written: int = 0
    late_dropped: int = 0

    def add_counts(self, other: PaneCounts) -> None:
        self.total += other.total
        for mine, theirs in ((self.classes, other.classes), (self.outcome, other.outcome)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
        for code, count in other.status.items():
            self.status[code] = self.status.get(code, 0) + count
        self.duration_sum_ms += other.duration_sum_ms
        self.duration_count += other.duration_count
        self.d1_queries += other.d1_queries
        self.d1_reads += other.d1_reads
        self.d1_writes += other.d1_writes
        self.d1_connection_failures += other.d1_connection_failures
        self.d1_rows_read += other.d1_rows_read
        self.d1_rows_written += other.d1_rows_written
        self.late_dropped += other.late_dropped

    def counts_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "classes": dict(self.classes),
            "status": {str(code): count for code, count in self.status.items()},
            "outcome": dict(self.outcome), "duration_sum_ms": self.duration_sum_ms,
            "duration_count": self.duration_count, "d1_queries": self.d1_queries, "d1_reads": self.d1_reads,
            "d1_writes": self.d1_writes, "d1_connection_failures": self.d1_connection_failures,
            "d1_rows_read": self.d1_rows_read, "d1_rows_written": self.d1_rows_written,
            "late_dropped": self.late_dropped,
        }

    @staticmethod
    def counts_from(data: dict[str, Any]) -> PaneCounts:
        return PaneCounts(
            total=data["total"], classes=dict(data["classes"]),
            status={int(code): count for code, count in data["status"].items()},
            outcome=dict(data["outcome"]), duration_sum_ms=data["duration_sum_ms"],
            duration_count=data["duration_count"], d1_queries=data["d1_queries"], d1_reads=data["d1_reads"],
            d1_writes=data["d1_writes"], d1_connection_failures=data["d1_connection_failures"],
            d1_rows_read=data["d1_rows_read"], d1_rows_written=data["d1_rows_written"],
            late_dropped=data["late_dropped"],
        )


@dataclass(slots=True)
class OpenPane(PaneCounts):
    """A pane still receiving records: its counts and raw values (`pipeline.pane_aggregation` adds a batch's)."""

    durations: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    d1_durations: list[float] = field(default_factory=list)

    def close(self) -> ClosedPane:
        closed = ClosedPane(duration_digest=digest_of(self.durations), cpu_digest=digest_of(self.cpu),
                            d1_digest=digest_of(self.d1_durations))
        closed.add_counts(self)
        return closed


@dataclass(slots=True)
class ClosedPane(PaneCounts):
    """A closed pane, or several merged into a longer window."""

    duration_digest: Sketch | None = None
    cpu_digest: Sketch | None = None
    d1_digest: Sketch | None = None

    @staticmethod
    def merge(panes: Iterable[ClosedPane]) -> ClosedPane:
        """Panes merged oldest first (pass them in time order, so the digests are always the same)."""
        listed = list(panes)
        merged = ClosedPane(
            duration_digest=merge_digests(p.duration_digest for p in listed),
            cpu_digest=merge_digests(p.cpu_digest for p in listed),
            d1_digest=merge_digests(p.d1_digest for p in listed),
        )
        for pane in listed:
            merged.add_counts(pane)
        return merged
