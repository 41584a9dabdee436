"""The page is self-contained and escapes what it shows; an empty report still renders."""

from __future__ import annotations

import re
from typing import Any

from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from pipeline.report.build import build_report
from pipeline.report.html import render_html, render_main
from pipeline.report.records import RecordTotals
from pipeline.report.services import ServiceTotals
from pipeline.report.snapshots import PaneTotals
from tests.test_pipeline.records import BASE_MS, record
from tests.test_pipeline.test_report.service_panes import service_snapshots

HOSTILE = '/api/<script>alert("x")</script>'


def report_with(endpoint: str, service: str = "svc", with_services: bool = False,
                alerts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    store = PaneStore()
    records = [record(BASE_MS + i * 1000, endpoint=endpoint if i % 3 else "/api/b", service=service,
                      status=500 if i % 4 == 0 else 200, error_message="<b>boom</b>" if i % 4 == 0 else None)
               for i in range(120)]
    store.add(records)
    panes = PaneTotals()
    snapshots = [snapshot(event) for event in store.close_until(BASE_MS + 10 * 60_000)]
    panes.add(snapshots)
    totals = RecordTotals()
    totals.add(records)
    services = None
    if with_services:
        services = ServiceTotals()
        services.add(service_snapshots(snapshots))
    return build_report(panes, totals, [] if alerts is None else alerts, services=services)


def test_self_contained_and_escaped() -> None:
    page = render_html(report_with(HOSTILE))
    assert "<script>" not in page  # no script at all in the static report, and the endpoint is escaped
    assert "&lt;script&gt;" in page and "&lt;b&gt;boom&lt;/b&gt;" in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    assert "@import" not in page and "url(" not in page
    assert page.count('class="chart"') == 6  # volume, errors, two latency charts, status, (no) alerts
    assert 'data-chart="alerts"' in page


def test_live_page_has_only_its_refresh_script() -> None:
    page = render_html(report_with("/api/a"), refresh_url="/dashboard/main", refresh_ms=2000)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1 and '"/dashboard/main"' in scripts[0] and "2000" in scripts[0]


def test_empty_report_renders() -> None:
    report = build_report(PaneTotals(), None, None, "live")
    assert report["window"]["minutes"] == 0 and report["top_templates"] is None
    main = render_main(report)
    assert "no data yet" in main and "no data" in main


def test_service_rows_next_to_the_endpoint_rows() -> None:
    """The service table (with its volume chart) comes right before the endpoint table; names are escaped; a
    service-wide alert is drawn on its service's row of the timeline."""
    hostile = '<img src=x onerror="alert(1)">'
    spike = {"rule": "factory-service-traffic-spike", "state": "firing", "change": "firing", "severity": "MEDIUM",
             "labels": {"service": hostile, "rule": "factory-service-traffic-spike"}, "fingerprint": "f",
             "starts_at": "2026-01-06T12:00:00.000Z", "ends_at": None,
             "provenance": {"window_end": "2026-01-06T12:01:00.000Z"}}
    report = report_with("/api/a", service=hostile, with_services=True, alerts=[spike])
    [row] = report["services"]
    assert (row["requests"], row["endpoints"], row["errors"]) == (120, 2, 30)
    main = render_main(report)
    assert "<img" not in main and "&lt;img src=x" in main
    assert main.index('data-widget="t-services"') < main.index('data-widget="t-endpoints"')
    services = re.search(r'<table data-table="services">.*?</table>', main, re.S)
    assert services is not None and services.group(0).count("<tr>") == 2  # header and the one service
    assert "120" in services.group(0) and "25.00%" in services.group(0)  # requests; error rate (30 of 120)
    assert 'data-chart="service-volume"' in main
    assert "(whole service)" in main  # the spike's span, on the alert timeline


def test_without_service_panes_the_page_says_where_they_come_from() -> None:
    main = render_main(report_with("/api/a"))
    assert 'data-widget="t-services"' in main and "metrics.service" in main
    assert 'data-chart="service-volume"' not in main


def test_late_endpoint_panes_are_shown_under_the_service_table() -> None:
    report = report_with("/api/a", with_services=True)
    assert "data-late-endpoint-panes" not in render_main(report)
    store = PaneStore()
    store.add([record(BASE_MS + i * 1000) for i in range(60)])
    [pane] = service_snapshots(snapshot(event) for event in store.close_until(BASE_MS + 60_000))
    services = ServiceTotals()
    services.add([{**pane, "late_endpoint_panes": 3}])
    late = build_report(PaneTotals(), services=services)
    assert late["services"][0]["late_endpoint_panes"] == 3
    assert 'data-late-endpoint-panes="3"' in render_main(late)
