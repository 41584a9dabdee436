"""The HTML report in headless Chromium: it loads with no console errors, draws the four widgets and the alert
timeline with data (counted in the DOM), and its screenshot is not blank. Needs no network: nothing external."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.synthetic import DEMO_START_MS, Incident, generate_events, render_capture
from tests.browser import open_page

MINUTE = 60_000
INCIDENTS = (
    Incident("errors", "/api/public/factory/build-specs", DEMO_START_MS + 2 * MINUTE, DEMO_START_MS + 16 * MINUTE,
             0.3),
    Incident("slow", "/api/public/factory/capabilities", DEMO_START_MS + 3 * MINUTE, DEMO_START_MS + 22 * MINUTE,
             10.0),
)
COUNTS = {
    "charts": "document.querySelectorAll('svg.chart').length",
    "marks": "Object.fromEntries([...document.querySelectorAll('svg.chart')].map(c => [c.dataset.chart, "
             "c.querySelectorAll('.mark').length]))",
    "latency_lines": "[...document.querySelectorAll('svg.chart[data-chart^=latency] polyline.mark')]"
                     ".filter(l => l.points.numberOfItems > 1).length",
    "widgets": "[...document.querySelectorAll('section.widget')].map(w => w.dataset.widget)",
    "baseline_rows": "document.querySelectorAll('table[data-table=baselines] tbody tr').length",
    "services": "[...document.querySelectorAll('table[data-table=services] tbody tr td:first-child')]"
                ".map(td => td.textContent)",
    "external": "[...document.querySelectorAll('[src],link[href]')].filter(e => "
                "!(e.getAttribute('src') || e.getAttribute('href')).startsWith('data:')).length",
    "resources": "performance.getEntriesByType('resource').length",
}


@pytest.fixture(scope="module")
def html_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("html-report")
    capture = folder / "capture.json"
    events = generate_events(3, DEMO_START_MS, 30, 300, incidents=INCIDENTS)
    capture.write_bytes(b"".join(render_capture(events)))
    page = folder / "report.html"
    done = subprocess.run([sys.executable, "-m", "agents.cli", "report", str(capture), "--json", "--html",
                           str(page)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return page, json.loads(done.stdout)


async def test_report_page_renders_every_widget_without_errors(html_report: tuple[Path, dict[str, Any]],
                                                                tmp_path: Path) -> None:
    page, report = html_report
    result = await open_page(page.as_uri(), COUNTS)
    (tmp_path / "report.png").write_bytes(result.screenshot)
    values = result.values
    assert result.errors == []
    latency_charts = min(8, len(report["series"]["endpoints"]))
    # volume, errors, latency × n, status pie, alert timeline, service volume
    assert values["charts"] == 5 + latency_charts
    marks = values["marks"]
    minutes = report["window"]["minutes"]
    assert minutes >= 30
    assert marks["volume"] >= minutes  # a stacked bar segment per endpoint and minute with traffic
    assert marks["errors"] >= len([r for r in report["endpoints"] if r["errors"]])
    assert marks["status"] == len(report["status_codes"])
    assert marks["alerts"] == sum(len(span["segments"]) for span in report["alerts"]["spans"]) > 0
    assert values["latency_lines"] == 3 * latency_charts
    assert values["widgets"][:6] == ["t-baselines", "volume", "errors", "latency", "status", "alerts"]
    assert values["widgets"][6:8] == ["t-services", "t-endpoints"]  # the service rows next to the endpoint rows
    assert values["services"] == [row["service"] for row in report["services"]] and len(report["services"]) == 2
    assert marks["service-volume"] >= minutes  # a bar segment per service and minute with traffic
    assert values["baseline_rows"] == 6
    assert values["external"] == 0 and values["resources"] == 0  # nothing fetched: no network needed
    ink = result.ink
    assert ink["height"] > 2000  # the whole page, not one viewport
    assert ink["inked"] > 0.05 and ink["colors"] > 50, ink


async def test_the_harness_sees_console_errors_and_blank_pages(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
                      "<script>console.error('drawn wrong'); notAFunction();</script></body></html>")
    result = await open_page(broken.as_uri(), {"charts": "document.querySelectorAll('svg.chart').length"})
    assert any("drawn wrong" in error for error in result.errors)
    assert any("notAFunction" in error for error in result.errors)
    assert result.values["charts"] == 0
    assert result.ink["inked"] < 0.01
