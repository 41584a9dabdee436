"""`tailwatch run --exit-when-done` includes the notifier: it exits only after every alert reached its channels,
and its stdout is still exactly the alert events (the same as `tailwatch replay`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from pipeline.notify.routing import Router
from schemas.alerts import AlertEvent
from tests.captures import disordered_capture
from tests.receivers import HttpReceiver, SmtpReceiver

pytestmark = pytest.mark.integration

HOOKS = {"slack-critical": "/services/T1/B1/crit", "slack-alerts": "/services/T1/B2/alerts",
         "slack-monitoring": "/services/T1/B3/mon"}


def test_run_delivers_every_alert_before_it_exits(sample_capture: Path, tmp_path: Path) -> None:
    capture = disordered_capture(sample_capture, tmp_path / "capture.json", copies=200)
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"} | {
            "PAGERDUTY_INTEGRATION_KEY": "pd-key-for-run-test", "PAGERDUTY_EVENTS_URL": http.url("/v2/enqueue"),
            "SLACK_CRITICAL_WEBHOOK": http.url(HOOKS["slack-critical"]),
            "SLACK_ALERTS_WEBHOOK": http.url(HOOKS["slack-alerts"]),
            "SLACK_MONITORING_WEBHOOK": http.url(HOOKS["slack-monitoring"]),
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
            "SMTP_FROM": "tailwatch@example.test"}
        live = subprocess.run([sys.executable, "-m", "agents.cli", "run", "--from", str(capture),
                               "--exit-when-done"], capture_output=True, text=True, timeout=300, env=env)
        assert live.returncode == 0, live.stderr[-3000:]
        replay = subprocess.run([sys.executable, "-m", "agents.cli", "replay", str(capture)],
                                capture_output=True, text=True, timeout=300, env=env)
        alerts = [orjson.loads(line) for line in live.stdout.splitlines()]
        replayed = [orjson.loads(line) for line in replay.stdout.splitlines()]
        for alert in alerts + replayed:  # live-only provenance: the logs-topic offsets that fed the window
            alert["provenance"].pop("input")
        assert alerts == replayed and len(alerts) >= 3
        router = Router(dict.fromkeys(["pagerduty", "email", *HOOKS], True))
        expected = Counter(d.channel for a in alerts for d in router.route(AlertEvent.model_validate(a)).deliveries)
        got = Counter({"pagerduty": len(http.requests("/v2/enqueue")), "email": len(smtp.messages()),
                       **{name: len(http.requests(path)) for name, path in HOOKS.items()}})
        assert sum(expected.values()) >= 3
        assert +got == +expected, live.stderr[-3000:]
