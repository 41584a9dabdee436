"""The main job: `tailwatch demo` runs the generated capture through the live pipeline and the spec's rules
fire and resolve where the incidents are; its screen holds no JSON log line (they go to its log file), it pages
no one even where channel secrets are set, and the capture it keeps replays to the same alerts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.receivers import HttpReceiver

pytestmark = pytest.mark.integration


def is_json_object(line: str) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def test_demo_shows_the_spec_rules_firing_and_resolving(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TAILWATCH_KAFKA_BOOTSTRAP", "TAILWATCH_LOG_LEVEL")}
    capture, log_file = tmp_path / "capture.json", tmp_path / "logs" / "demo.log"
    with HttpReceiver() as http:  # channels configured as a user's shell may have them: the demo must not use them
        env |= {"PAGERDUTY_EVENTS_URL": http.url("/pagerduty"), "PAGERDUTY_INTEGRATION_KEY": "r" * 32,
                **{f"SLACK_{name}_WEBHOOK": http.url(f"/slack/{name}")
                   for name in ("CRITICAL", "ALERTS", "MONITORING")}}
        # What a terminal shows: stdout and stderr together, at the default log level (INFO lines exist).
        result = subprocess.run([sys.executable, "-m", "agents.cli", "demo", "--keep", str(capture),
                                 "--log-file", str(log_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, env=env)
        assert http.requests() == []
    screen = result.stdout
    assert result.returncode == 0, screen[-3000:]
    assert [line for line in screen.splitlines() if is_json_object(line)] == []
    assert f"(JSON): {log_file}" in screen
    logged = [orjson.loads(line) for line in log_file.read_text().splitlines()]
    messages = {(entry["service"], entry["message"]) for entry in logged}
    assert ("tailwatch-demo", "embedded broker started") in messages  # the demo's own lines
    assert ("tailwatch-worker", "worker ready") in messages  # and its children's, relayed
    assert any(service == "tailwatch-notify" for service, _ in messages)

    rows = [line.split() for line in screen.splitlines() if line[:2].isdigit() and ":" in line[:5]]
    seen = {(row[1], row[3], row[4]) for row in rows}
    for rule, endpoint in [("factory-service-down", "/api/public/factory/build-specs/:runId"),
                           ("factory-high-error-rate", "/api/public/factory/build-specs"),
                           ("factory-404-spike", "/api/public/factory/templates/:slug"),
                           ("factory-slow-responses", "/api/public/factory/capabilities"),
                           ("d1-connection-failures", "/api/public/factory/templates"),
                           ("factory-traffic-spike", "/api/public/factory/capabilities/free")]:
        assert ("firing", rule, endpoint) in seen, rule
        assert ("resolved", rule, endpoint) in seen, rule

    # --keep: the capture stays, and replaying it offline gives as many alert transitions as the demo published.
    published = re.search(r"^(\d+) alert transitions on the alerts topic", screen, re.MULTILINE)
    assert published, screen[-2000:]
    replay = subprocess.run([sys.executable, "-m", "agents.cli", "replay", str(capture)], capture_output=True,
                            text=True, timeout=120, env=env)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert len(replay.stdout.splitlines()) == int(published.group(1))


def test_demo_shows_a_service_wide_alert_for_all_endpoints(capsys: pytest.CaptureFixture[str]) -> None:
    """A service-wide rule's alert has no endpoint label: the demo's table says it covers every endpoint."""
    from agents.commands.demo import show
    from tests.alert_samples import service_alerts

    show(service_alerts(), everything=True)
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split()[1:5] for row in rows] == [["firing", "MEDIUM", "service-busy", "gateway"],
                                                 ["resolved", "MEDIUM", "service-busy", "gateway"]]
    assert all("gateway (all endpoints)" in row for row in rows)
