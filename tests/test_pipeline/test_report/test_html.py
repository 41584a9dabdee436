"""The page is self-contained and escapes what it shows; an empty report still renders."""

from __future__ import annotations

import re

from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from pipeline.report.build import build_report
from pipeline.report.html import render_html, render_main
from pipeline.report.records import RecordTotals
from pipeline.report.snapshots import PaneTotals
from tests.test_pipeline.records import BASE_MS, record

HOSTILE = '/api/<script>alert("x")</script>'


def report_with(endpoint: str) -> dict[str, object]:
    store = PaneStore()
    records = [record(BASE_MS + i * 1000, endpoint=endpoint, status=500 if i % 4 == 0 else 200,
                      error_message="<b>boom</b>" if i % 4 == 0 else None) for i in range(120)]
    store.add(records)
    panes = PaneTotals()
    panes.add(snapshot(event) for event in store.close_until(BASE_MS + 10 * 60_000))
    totals = RecordTotals()
    totals.add(records)
    return build_report(panes, totals, [])


def test_self_contained_and_escaped() -> None:
    page = render_html(report_with(HOSTILE))
    assert "<script>" not in page  # no script at all in the static report, and the endpoint is escaped
    assert "&lt;script&gt;" in page and "&lt;b&gt;boom&lt;/b&gt;" in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    assert "@import" not in page and "url(" not in page
    assert page.count('class="chart"') == 5  # volume, errors, one latency chart, status, (no) alerts
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
