"""The report's numbers equal an independent computation in plain Python over the parsed records, on generated
traffic with incidents; percentiles from the merged pane digests are within a small rank error of the exact ones."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import pytest

from pipeline.extract import Extractor
from pipeline.parsing import LogParser
from pipeline.report.baselines import PERFORMANCE_BASELINES
from pipeline.report.capture import CaptureReport
from pipeline.synthetic import DEMO_START_MS, Incident, generate_events, render_capture

MINUTE = 60_000
CLEAN = {"ok", "canceled", "responseStreamDisconnected", "log"}


def at(minute: int) -> int:
    return DEMO_START_MS + minute * MINUTE


INCIDENTS = (
    Incident("errors", "/api/public/factory/build-specs", at(3), at(9), 0.25),
    Incident("slow", "/api/public/factory/capabilities", at(5), at(14), 10.0),
    Incident("not_found", "/api/public/factory/templates/:slug", at(2), at(12), 0.4),
    Incident("down", "/api/public/factory/build-specs/:runId", at(15), at(18), 0.8),
)


@pytest.fixture(scope="module")
def parsed() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Records of 24 minutes of traffic (deliveries up to 3 s out of order) and the report over them."""
    events = generate_events(5, DEMO_START_MS, 24, 400, incidents=INCIDENTS, disorder_ms=3_000)
    parser = LogParser("generated", Extractor())
    capture = CaptureReport()
    records: list[dict[str, Any]] = []
    pending: list[bytes] = []
    for i, printed in enumerate(render_capture(events)):
        pending.append(printed)
        if i % 700 == 699:  # feed in chunks, as a file is read
            batch = parser.feed(b"".join(pending)).records
            pending = []
            records.extend(batch)
            capture.feed(batch)
    for out in (parser.feed(b"".join(pending)), parser.finish()):
        records.extend(out.records)
        capture.feed(out.records)
    capture.end()
    return records, capture.report(top=10)


def klass(record: dict[str, Any]) -> str:
    status = record["status"]
    if status is None:
        return "none" if record["outcome"] in CLEAN else "5xx"
    return f"{status // 100}xx"


def by_endpoint(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[(record["service"], record["endpoint"])].append(record)
    return groups


def test_nothing_late_so_panes_hold_every_record(parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    assert len(records) > 9000
    assert report["totals"]["late_dropped"] == 0
    assert report["totals"]["requests"] == len(records) == report["totals"]["records_read"]


def test_per_endpoint_counts_rates_and_averages(parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    rows = {(r["service"], r["endpoint"]): r for r in report["endpoints"]}
    groups = by_endpoint(records)
    assert set(rows) == set(groups)
    for key, members in groups.items():
        row = rows[key]
        classes = Counter(klass(r) for r in members)
        responses = len(members) - classes["none"]
        errors = classes["4xx"] + classes["5xx"]
        durations = [r["duration_ms"] for r in members if r["duration_ms"] is not None]
        status = Counter(str(r["status"]) for r in members if r["status"] is not None)
        if classes["none"]:
            status["none"] = classes["none"]
        failed = sum(1 for r in members if r["status"] is None and r["outcome"] not in CLEAN)
        if failed:
            status["failed"] = failed
        assert row["requests"] == len(members), key
        assert row["responses"] == responses
        assert row["errors"] == errors
        assert (row["count_4xx"], row["count_5xx"]) == (classes["4xx"], classes["5xx"])
        assert row["error_rate"] == round(errors / responses, 6)
        assert row["status"] == dict(status)
        assert row["avg_ms"] == pytest.approx(sum(durations) / len(durations), abs=1e-3)
    # request volume ordering: busiest first
    assert [r["requests"] for r in report["endpoints"]] == sorted((r["requests"] for r in report["endpoints"]),
                                                                  reverse=True)


def test_error_rate_query_keeps_only_endpoints_over_one_percent(
        parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    expected = []
    for (service, endpoint), members in by_endpoint(records).items():
        classes = Counter(klass(r) for r in members)
        responses = len(members) - classes["none"]
        errors = classes["4xx"] + classes["5xx"]
        if responses and errors / responses > 0.01:
            expected.append((errors / responses, service, endpoint))
    expected.sort(key=lambda t: (-t[0], t[1], t[2]))
    assert [(r["service"], r["endpoint"]) for r in report["error_rates"]] == [(s, e) for _, s, e in expected]
    assert len(report["error_rates"]) >= 4


def test_status_code_distribution(parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    expected = Counter(str(r["status"]) if r["status"] is not None else
                       ("none" if r["outcome"] in CLEAN else "failed") for r in records)
    assert {row["status"]: row["count"] for row in report["status_codes"]} == dict(expected)
    assert sum(row["count"] for row in report["status_codes"]) == len(records)


def within_rank(ordered: list[float], q: float, estimate: float, error: float, resolution: float = 1.0) -> bool:
    """Whether `estimate` lies between the exact values at ranks q - error and q + error, give or take the data's
    resolution (durations are whole milliseconds: a digest interpolates between tied values)."""
    n = len(ordered)
    low = ordered[max(0, math.floor((q - error) * n) - 1)]
    high = ordered[min(n - 1, math.ceil((q + error) * n))]
    return low - resolution <= estimate <= high + resolution


def test_percentiles_slowest_and_baselines(parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    groups = by_endpoint(records)
    checked = 0
    for row in report["endpoints"]:
        durations = sorted(r["duration_ms"] for r in groups[(row["service"], row["endpoint"])]
                           if r["duration_ms"] is not None)
        if len(durations) < 1000:
            continue
        checked += 1
        for q, key in ((0.50, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            assert within_rank(durations, q, row[key], 0.005), (row["endpoint"], key, row[key])
    assert checked >= 4
    slowest = report["slowest"]
    assert [r["p95_ms"] for r in slowest] == sorted((r["p95_ms"] for r in slowest), reverse=True)
    assert slowest[0]["endpoint"] == "/api/public/factory/capabilities"  # the slow incident

    by_name = {row["endpoint"]: row for row in report["baselines"]}
    assert [row["name"] for row in report["baselines"]] == [b.name for b in PERFORMANCE_BASELINES]
    for baseline in PERFORMANCE_BASELINES:
        row = by_name[baseline.endpoint]
        durations = sorted(r["duration_ms"] for r in records
                           if r["endpoint"] == baseline.endpoint and r["duration_ms"] is not None)
        members = [r for r in records if r["endpoint"] == baseline.endpoint]
        assert row["measured"]["requests"] == len(members)
        passes = {}
        for q, key, target in ((0.50, "p50", baseline.p50_ms), (0.95, "p95", baseline.p95_ms),
                               (0.99, "p99", baseline.p99_ms)):
            measured = row["measured"][f"{key}_ms"]
            assert within_rank(durations, q, measured, 0.005), (baseline.name, key, measured)
            passes[key] = measured < target
        assert row["pass"] == passes
        assert row["verdict"] == ("pass" if all(passes.values()) else "fail")
        per_minute = Counter(r["event_time_ms"] // MINUTE for r in members)
        assert row["measured"]["rps_peak_minute"] == round(max(per_minute.values()) / 60, 3)
        assert row["measured"]["rps_avg"] == round(len(members) / (report["window"]["minutes"] * 60), 3)
    assert by_name["/api/public/factory/capabilities"]["verdict"] == "fail"  # slowed tenfold for 9 minutes
    assert by_name["/api/public/factory/templates"]["verdict"] == "pass"


def test_record_sections(parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    slug_requests: Counter[str] = Counter()
    slug_views: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    list_requests = 0
    for r in records:
        if r["endpoint"] == "/api/public/factory/templates/:slug":
            slug = r["path"].split("/")[5]
            slug_requests[slug] += 1
            slug_views[slug] += r["status"] is not None and 200 <= r["status"] < 400
        elif r["endpoint"] == "/api/public/factory/build-specs/:runId":
            runs[r["path"].split("/")[5]] += 1
        elif r["endpoint"] == "/api/public/factory/build-specs":
            list_requests += 1
    top = report["top_templates"]
    assert len(top) == 10
    for row in top:
        assert (row["views"], row["requests"]) == (slug_views[row["slug"]], slug_requests[row["slug"]])
    assert [row["views"] for row in top] == sorted(slug_views.values(), reverse=True)[:10]
    missing = {"modern-sass", "undefined", "null", "crm", "old-landing", "invoice-tracker-v1"}
    assert not missing & {row["slug"] for row in top[:5]}  # 404s are requests, not views

    messages = Counter(r["error_message"] for r in records if r["error_message"] is not None)
    expected = sorted(messages.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(row["message"], row["count"]) for row in report["top_errors"]] == expected

    specs = report["build_specs"]
    assert specs["list_requests"] == list_requests
    assert specs["detail_requests"] == sum(runs.values())
    assert specs["distinct_runs"] == len(runs)
    assert {row["run_id"]: row["requests"] for row in specs["top_runs"]}.items() <= runs.items()


def test_per_minute_series(parsed: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    records, report = parsed
    minutes = report["series"]["minutes"]
    assert minutes == list(range(minutes[0], minutes[-1] + MINUTE, MINUTE))
    assert minutes[0] == min(r["event_time_ms"] for r in records) // MINUTE * MINUTE
    counts = Counter((r["service"], r["endpoint"], r["event_time_ms"] // MINUTE * MINUTE) for r in records)
    errors = Counter((r["service"], r["endpoint"], r["event_time_ms"] // MINUTE * MINUTE) for r in records
                     if klass(r) in ("4xx", "5xx"))
    for series in report["series"]["endpoints"]:
        key = (series["service"], series["endpoint"])
        assert series["requests"] == [counts[(*key, m)] for m in minutes]
        assert series["errors"] == [errors[(*key, m)] for m in minutes]
        for i, m in enumerate(minutes):
            has_latency = any(r["duration_ms"] is not None for r in records
                              if (r["service"], r["endpoint"]) == key and r["event_time_ms"] // MINUTE * MINUTE == m)
            assert (series["p95_ms"][i] is not None) == has_latency
            if has_latency:
                assert series["p50_ms"][i] <= series["p95_ms"][i] <= series["p99_ms"][i]
    assert not math.isnan(sum(sum(s["requests"]) for s in report["series"]["endpoints"]))
