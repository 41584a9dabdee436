"""`tailwatch report`: tables, --json (the same object the pure core builds; the alert timeline from the events
`tailwatch replay` prints), clear errors, and the progress bar on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.rules_files import load_rules
from pipeline.extract import Extractor
from pipeline.parsing import LogParser
from pipeline.report.capture import CaptureReport
from pipeline.rules.engine import RuleEngine
from pipeline.synthetic import DEMO_START_MS, Incident, generate_events, render_capture
from tests.service_capture import SPIKE_ENDPOINTS, SPIKE_MINUTES, SPIKE_PER_ENDPOINT, service_spike_capture

MINUTE = 60_000


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report-cmd") / "capture.json"
    incident = Incident("errors", "/api/public/factory/build-specs", DEMO_START_MS + 2 * MINUTE,
                        DEMO_START_MS + 20 * MINUTE, 0.3)
    path.write_bytes(b"".join(render_capture(generate_events(8, DEMO_START_MS, 25, 240, incidents=(incident,)))))
    return path


def core_report(path: Path) -> dict[str, Any]:
    rules = load_rules()
    capture = CaptureReport(RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    parser = LogParser(str(path), Extractor())
    capture.feed(parser.feed(path.read_bytes()).records)
    capture.feed(parser.finish().records)
    capture.end()
    return capture.report(10, [str(path)])


def test_json_is_the_core_report_and_the_timeline_holds_replays_alerts(capture: Path) -> None:
    done = cli("report", str(capture), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == json.loads(orjson.dumps(core_report(capture)))
    replayed = cli("replay", str(capture))
    alerts = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert report["alerts"]["events"] == len(alerts) > 0
    firings = [a for a in alerts if a["change"] == "firing"]
    assert len(report["alerts"]["spans"]) == len(firings)
    assert {(s["rule"], s["endpoint"]) for s in report["alerts"]["spans"]} == \
        {(a["rule"], a["labels"].get("endpoint", "")) for a in firings}  # a service-wide rule has no endpoint
    assert f"panes={report['totals']['panes']} alerts={len(alerts)}" in done.stderr


def test_tables_name_every_section(capture: Path, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    done = cli("report", str(capture), "--html", str(page), "--top", "3")
    assert done.returncode == 0, done.stderr
    for title in ("Performance Baselines", "GET /api/public/factory/build-specs/:runId", "Services (all endpoints",
                  "Request volume, errors and response time by endpoint", "Error rate by endpoint (> 1 %)",
                  "Slowest endpoints", "Status code distribution", "Top templates", "Top error messages",
                  "Build-spec accesses", "Alert timeline"):
        assert title in done.stdout, title
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert "records/s" not in done.stderr  # no progress bar when stderr is not a terminal


def test_clear_errors(capture: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    missing = cli("report", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    both = cli("report", str(capture), "--live")
    assert both.returncode == 2 and "not both" in both.stderr
    neither = cli("report")
    assert neither.returncode == 2
    no_kafka = cli("report", "--live", env=env)
    assert no_kafka.returncode == 2 and "--bootstrap" in no_kafka.stderr
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("version: 1\nrules:\n  - name: x\n    condition: error_rate >\n")
    rules = cli("report", str(capture), "--rules", str(bad_rules))
    assert rules.returncode == 2 and "rules.yaml" in rules.stderr


@pytest.mark.parametrize("command", ["replay", "report"])
def test_progress_bar_on_a_terminal(capture: Path, command: str) -> None:
    """With stderr on a terminal, a progress line with records/s; the result on stdout is unchanged."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "agents.cli", command, str(capture), "--json"
                               if command == "report" else "--metrics"], stdout=subprocess.PIPE, stderr=follower,
                              stdin=subprocess.DEVNULL, timeout=120)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            shown += data
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    text = shown.decode(errors="replace")
    assert "records/s" in text and "records" in text
    assert done.stdout.strip()  # the report or snapshots still went to stdout


def test_a_worker_wide_spike_in_the_report(tmp_path: Path) -> None:
    """The parity capture (every endpoint under 1,000 a minute, the service over 10,000 for 7 minutes): the report's
    service row has the spike's minute, its timeline one span of the service-wide rule, on the service's row."""
    capture = service_spike_capture(tmp_path / "spike.log", DEMO_START_MS)
    page = tmp_path / "spike.html"
    done = cli("report", str(capture), "--json", "--html", str(page))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [row] = report["services"]
    per_minute = len(SPIKE_ENDPOINTS) * SPIKE_PER_ENDPOINT
    assert (row["service"], row["peak_minute_requests"], row["endpoints"]) == ("factory-api", per_minute, 12)
    assert row["requests"] == sum(r["requests"] for r in report["endpoints"])
    assert max(r["requests"] for r in report["endpoints"]) < 1000 * len(SPIKE_MINUTES)
    assert [(s["rule"], s["endpoint"]) for s in report["alerts"]["spans"]] == [("factory-service-traffic-spike", "")]
    assert "factory-api (whole service)" in page.read_text()
    tables = cli("report", str(capture))
    assert "Services (all endpoints" in tables.stdout and "factory-api (whole service)" in tables.stdout
