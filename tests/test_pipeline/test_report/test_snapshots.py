"""Pane totals: snapshots delivered twice count once, a horizon bounds what is kept, sums are exact."""

from __future__ import annotations

from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from pipeline.report.records import route_param
from pipeline.report.snapshots import PaneTotals
from tests.test_pipeline.records import BASE_MS, record

MINUTE = 60_000


def snapshots(minutes: int, per_minute: int = 10) -> list[dict[str, object]]:
    store = PaneStore()
    store.add([record(BASE_MS + m * MINUTE + i * 1000, status=500 if i == 0 else 200, duration=float(i + 1))
               for m in range(minutes) for i in range(per_minute)])
    return [snapshot(event) for event in store.close_until(BASE_MS + minutes * MINUTE)]


def test_duplicates_replace_and_sums_are_exact() -> None:
    totals = PaneTotals()
    snaps = snapshots(5)
    assert totals.add(snaps) == 5
    version = totals.version
    assert totals.add(snaps[2:4]) == 0  # re-sent after a crash: identical, not counted again
    assert totals.version == version
    [summed] = totals.endpoint_sums()
    assert (summed.total, summed.errors, summed.duration_count) == (50, 5, 50)
    assert summed.avg_ms == 5.5
    p50, _p95, p99 = summed.percentiles()
    assert p50 is not None and p99 is not None and 5 <= p50 <= 6 and p99 >= 9.5


def test_horizon_keeps_only_the_newest_panes() -> None:
    totals = PaneTotals(horizon_ms=3 * MINUTE)
    totals.add(snapshots(10))
    assert sorted(start for _s, _e, start in totals.points) == [BASE_MS + m * MINUTE for m in (7, 8, 9)]


def test_route_param() -> None:
    route = "/api/public/factory/templates/:slug"
    assert route_param(route, "/api/public/factory/templates/crm-lite") == "crm-lite"
    assert route_param(route, "/api/public/factory/templates/crm-lite/preview") == "crm-lite"
    assert route_param(route, "/api/public/factory/templates") is None
    assert route_param(route, None) is None
