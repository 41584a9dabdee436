"""Service rows: on generated traffic of two services with incidents, run through both stages, each service row's
counts, rates, D1 sums and per-minute volume equal a plain-Python computation over the service's records (and the
sums of its endpoint rows); its percentiles (latency, CPU) lie within a small rank error of the exact ones;
duplicates count once; a horizon bounds what is kept; a report without a service source says so (null). The
tests' own merge of endpoint panes (`service_panes.py`, used where no stage runs) equals the service stage's."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

from agents.rules_files import load_rules
from pipeline.extract import Extractor
from pipeline.metrics import snapshot
from pipeline.parsing import LogParser
from pipeline.replay import Replay
from pipeline.report.build import build_report
from pipeline.report.capture import CaptureReport
from pipeline.report.html import render_main
from pipeline.report.records import RecordTotals
from pipeline.report.services import ServiceTotals
from pipeline.report.snapshots import PaneTotals
from pipeline.rules.engine import RuleEngine
from pipeline.service import service_snapshot
from pipeline.synthetic import DEMO_START_MS, Incident, generate_events, render_capture
from tests.test_pipeline.records import BASE_MS as BASE
from tests.test_pipeline.records import record
from tests.test_pipeline.test_report.service_panes import service_snapshots
from tests.test_pipeline.test_report.test_build import klass, within_rank

MINUTE = 60_000
INCIDENTS = (
    Incident("errors", "/api/public/factory/build-specs", DEMO_START_MS + 3 * MINUTE, DEMO_START_MS + 9 * MINUTE,
             0.25),
    Incident("not_found", "/api/public/factory/templates/:slug", DEMO_START_MS + 2 * MINUTE,
             DEMO_START_MS + 12 * MINUTE, 0.4),
)


Traffic = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    """Records of 16 minutes of traffic, and the endpoint and service snapshots the two stages closed over them
    (fed in chunks, as a file is read)."""
    events = generate_events(7, DEMO_START_MS, 16, 900, incidents=INCIDENTS, disorder_ms=2_000)
    parser = LogParser("generated", Extractor())
    records = parser.feed(b"".join(render_capture(events))).records + parser.finish().records
    replay = Replay()
    steps = [replay.step("files", records[i:i + 2000]) for i in range(0, len(records), 2000)]
    steps.append(replay.step_end("files"))
    return (records, [snapshot(event) for step in steps for event in step.closed],
            [service_snapshot(event) for step in steps for event in step.service_closed])


@pytest.fixture(scope="module")
def report(traffic: Traffic) -> dict[str, Any]:
    records, endpoint_snapshots, service_panes = traffic
    panes, services, totals = PaneTotals(), ServiceTotals(), RecordTotals()
    panes.add(endpoint_snapshots)
    services.add(service_panes)
    totals.add(records)
    return build_report(panes, totals, [], services=services)


def test_the_tests_merge_is_the_service_stages(traffic: Traffic) -> None:
    _, endpoint_snapshots, service_panes = traffic
    assert len(service_panes) == 2 * 16
    def key(pane: dict[str, Any]) -> tuple[int, str]:
        return pane["window_start_ms"], pane["service"]
    assert sorted(service_snapshots(endpoint_snapshots), key=key) == sorted(service_panes, key=key)


def test_a_capture_report_has_the_service_rows(traffic: Traffic, report: dict[str, Any]) -> None:
    records, _, _ = traffic
    capture = CaptureReport()
    for i in range(0, len(records), 2000):
        capture.feed(records[i:i + 2000])
    capture.end()
    from_capture = capture.report()
    assert from_capture["services"] == report["services"]
    assert from_capture["series"] == report["series"]


def by_service(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for one in records:
        groups[one["service"]].append(one)
    return groups


def test_counts_and_rates_equal_the_records(traffic: Traffic,
                                            report: dict[str, Any]) -> None:
    records, _, _ = traffic
    groups = by_service(records)
    rows = {row["service"]: row for row in report["services"]}
    assert set(rows) == set(groups) and len(rows) == 2
    assert report["totals"]["services"] == 2
    assert [r["requests"] for r in report["services"]] == sorted((len(g) for g in groups.values()), reverse=True)
    for service, members in groups.items():
        row = rows[service]
        classes = Counter(klass(r) for r in members)
        responses = len(members) - classes["none"]
        not_found = sum(1 for r in members if r["status"] == 404)
        assert row["requests"] == len(members)
        assert row["responses"] == responses
        assert (row["count_4xx"], row["count_5xx"]) == (classes["4xx"], classes["5xx"])
        assert row["errors"] == classes["4xx"] + classes["5xx"]
        assert row["success_rate"] == round((classes["2xx"] + classes["3xx"]) / responses, 6)
        assert row["error_rate"] == round((classes["4xx"] + classes["5xx"]) / responses, 6)
        assert row["ratio_404"] == round(not_found / responses, 6)
        durations = [r["duration_ms"] for r in members if r["duration_ms"] is not None]
        assert row["avg_ms"] == pytest.approx(sum(durations) / len(durations), abs=1e-3)
        queries = [q for r in members for q in r["d1"]]
        assert row["d1_queries"] == len(queries) > 0
        assert row["d1_rows_read"] == sum(q["rows_read"] for q in queries)
        assert row["d1_rows_written"] == sum(q["rows_written"] for q in queries)
        per_minute = Counter(r["event_time_ms"] // MINUTE for r in members)
        assert row["peak_minute_requests"] == max(per_minute.values())
        assert row["panes"] == len(per_minute)
        assert row["late_dropped"] == 0 and row["late_endpoint_panes"] == 0
        # … and the service row is the sum of its endpoint rows
        mine = [r for r in report["endpoints"] if r["service"] == service]
        assert row["endpoints"] == len(mine)
        for key in ("requests", "responses", "errors", "count_4xx", "count_5xx"):
            assert row[key] == sum(r[key] for r in mine), key


def test_percentiles_within_rank_error(traffic: Traffic,
                                       report: dict[str, Any]) -> None:
    records, _, _ = traffic
    rows = {row["service"]: row for row in report["services"]}
    for service, members in by_service(records).items():
        row = rows[service]
        durations = sorted(r["duration_ms"] for r in members if r["duration_ms"] is not None)
        assert len(durations) > 400
        for q, key in ((0.50, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            assert within_rank(durations, q, row[key], 0.005), (service, key, row[key])
        cpu = sorted(r["cpu_ms"] for r in members if r["cpu_ms"] is not None)
        assert within_rank(cpu, 0.95, row["cpu_p95_ms"], 0.005), (service, row["cpu_p95_ms"])
        d1 = sorted(q["duration_ms"] for r in members for q in r["d1"])
        assert within_rank(d1, 0.95, row["d1_p95_ms"], 0.01, resolution=0.5), (service, row["d1_p95_ms"])


def test_per_minute_series(traffic: Traffic,
                           report: dict[str, Any]) -> None:
    records, _, _ = traffic
    minutes = report["series"]["minutes"]
    counts = Counter((r["service"], r["event_time_ms"] // MINUTE * MINUTE) for r in records)
    errors = Counter((r["service"], r["event_time_ms"] // MINUTE * MINUTE) for r in records
                     if klass(r) in ("4xx", "5xx"))
    series = report["series"]["services"]
    assert [s["service"] for s in series] == sorted(by_service(records))
    for row in series:
        assert row["requests"] == [counts[(row["service"], m)] for m in minutes]
        assert row["errors"] == [errors[(row["service"], m)] for m in minutes]
        assert all(p50 <= p99 for p50, p99 in zip(row["p50_ms"], row["p99_ms"], strict=True) if p50 is not None)


def test_duplicates_count_once_and_the_horizon_bounds(
        traffic: Traffic) -> None:
    _, endpoint_snapshots, snaps = traffic
    services = ServiceTotals()
    assert services.add(snaps) == len(snaps) == 2 * 16
    version = services.version
    assert services.add(snaps[5:9]) == 0  # re-sent after a crash: identical, not counted again
    assert services.version == version
    assert sum(total.counts["total"] for total in services.service_sums()) == \
        sum(s["total"] for s in endpoint_snapshots)
    bounded = ServiceTotals(horizon_ms=3 * MINUTE)
    for snap in snaps:  # one at a time, as a dashboard reads them
        bounded.add([snap])
        assert len(bounded.points) <= 2 * 3
    assert sorted({start for _s, _e, start in bounded.points}) == [DEMO_START_MS + m * MINUTE for m in (13, 14, 15)]


def test_without_a_service_source_the_sections_are_null(
        traffic: Traffic) -> None:
    _, endpoint_snapshots, _ = traffic
    panes = PaneTotals()
    panes.add(endpoint_snapshots)
    report = build_report(panes)
    assert report["services"] is None and report["series"]["services"] is None
    assert report["totals"]["services"] is None
    empty = build_report(PaneTotals(), services=ServiceTotals())
    assert empty["services"] == [] and empty["totals"]["services"] == 0 and empty["series"]["services"] == []


def test_a_worker_wide_spike_shows_on_the_service_row_and_timeline() -> None:
    """Each of 14 endpoints at 800 a minute (under the endpoint rule's 1000), the service at 11,260 a minute for 7
    minutes: the report's service row shows the peak minute, the timeline one span of the service-wide rule on the
    service's row, and no endpoint spike."""
    rules = load_rules()
    capture = CaptureReport(RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    for minute in range(12):
        burst = 1 <= minute < 8
        batch = [record(BASE + minute * MINUTE + i * 1000, "/api/x", service="factory-api") for i in range(60)]
        if burst:
            batch += [record(BASE + minute * MINUTE + i * 75, f"/api/e{e}", service="factory-api")
                      for e in range(1, 15) for i in range(800)]
        batch.sort(key=lambda r: r["event_time_ms"])
        capture.feed(batch)
    capture.end()
    report = capture.report()
    [row] = report["services"]
    assert (row["requests"], row["peak_minute_requests"], row["endpoints"]) == (12 * 60 + 7 * 11_200, 11_260, 15)
    assert max(r["requests"] for r in report["endpoints"]) == 7 * 800
    assert report["series"]["services"][0]["requests"] == [60] + [11_260] * 7 + [60] * 4
    [span] = report["alerts"]["spans"]
    assert (span["rule"], span["service"], span["endpoint"], span["open"]) == (
        "factory-service-traffic-spike", "factory-api", "", False)
    assert ((span["start_ms"] - BASE) // MINUTE, (span["end_ms"] - BASE) // MINUTE) == (6, 9)
    page = render_main(report)
    assert "factory-api (whole service)" in page and 'data-chart="service-volume"' in page
