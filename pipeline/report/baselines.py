"""The spec's Performance Baselines ("Expected Performance (Post-Deployment)"), names and targets as written, and
the measured p50/p95/p99 of each endpoint against them.

A target `<100ms` passes when the measured percentile is below 100 ms. The measured percentiles come from the
endpoint's panes' t-digests merged (over every service that served it); Target RPS is shown next to the measured
average and peak-minute rates, not judged (it is a capacity target, not a limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.report.snapshots import PanePoint, sum_points


@dataclass(frozen=True, slots=True)
class Baseline:
    method: str
    endpoint: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    target_rps: float

    @property
    def name(self) -> str:
        return f"{self.method} {self.endpoint}"


PERFORMANCE_BASELINES: tuple[Baseline, ...] = (
    Baseline("GET", "/api/public/factory/templates", 100, 300, 500, 20),
    Baseline("GET", "/api/public/factory/templates/:slug", 80, 200, 400, 10),
    Baseline("GET", "/api/public/factory/capabilities", 100, 300, 500, 15),
    Baseline("GET", "/api/public/factory/capabilities/free", 100, 300, 500, 10),
    Baseline("GET", "/api/public/factory/build-specs", 150, 400, 600, 15),
    Baseline("GET", "/api/public/factory/build-specs/:runId", 100, 250, 450, 10),
)


def _below(measured: float | None, target: float) -> bool | None:
    return None if measured is None else measured < target


def evaluate(points: Sequence[PanePoint], minutes: int,
             baselines: Sequence[Baseline] = PERFORMANCE_BASELINES) -> list[dict[str, Any]]:
    """One row per baseline: targets, measured values and pass/fail. `points` oldest first; `minutes` is the
    length of the report's window (for the average rate)."""
    rows = []
    for baseline in baselines:
        mine = [point for point in points if point.endpoint == baseline.endpoint]
        total = sum_points("*", baseline.endpoint, mine)
        p50, p95, p99 = total.percentiles()
        per_minute: dict[int, int] = {}
        for point in mine:
            per_minute[point.start_ms] = per_minute.get(point.start_ms, 0) + point.total
        checks = {"p50": _below(p50, baseline.p50_ms), "p95": _below(p95, baseline.p95_ms),
                  "p99": _below(p99, baseline.p99_ms)}
        verdict = "no data" if total.digest is None else ("pass" if all(checks.values()) else "fail")
        rows.append({
            "name": baseline.name, "method": baseline.method, "endpoint": baseline.endpoint,
            "target": {"p50_ms": baseline.p50_ms, "p95_ms": baseline.p95_ms, "p99_ms": baseline.p99_ms,
                       "rps": baseline.target_rps},
            "measured": {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "requests": total.total,
                         "rps_avg": round(total.total / (minutes * 60), 3) if minutes else None,
                         "rps_peak_minute": round(max(per_minute.values()) / 60, 3) if per_minute else None},
            "pass": checks, "verdict": verdict,
        })
    return rows
