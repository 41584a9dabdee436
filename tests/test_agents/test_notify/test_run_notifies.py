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
from tests.captures import disordered_capture, event_time, sample_events, shifted
from tests.receivers import HttpReceiver, Reply, SmtpReceiver

pytestmark = pytest.mark.integration

KEY_HEADER = "X-Tailwatch-Delivery-Key"
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


def poisoned_capture(sample: Path, path: Path, copies: int = 200) -> Path:
    """The sample's traffic with every `templates/tpl_…` request logged under a hostile path (Slack mentions,
    `&amp;`, CR/LF, backticks) for `copies` copies, then as logged for `copies` more: a CRITICAL alert on the
    hostile endpoint first, the sample's usual alerts after it."""
    text = sample.read_text()
    hostile_text = text.replace('\\"path\\":\\"/api/public/factory/templates/tpl_',
                                '\\"path\\":\\"/api/<!channel>/<b>&amp;\\\\r\\\\nBcc: x@evil.test `x`/tpl_')
    hostile = tmp = path.with_suffix(".hostile.json")
    tmp.write_text(hostile_text)
    events = [shifted(e, c * 7_000) for c in range(copies) for e in sample_events(hostile)]
    events += [shifted(e, c * 7_000) for c in range(copies, 2 * copies) for e in sample_events(sample)]
    with path.open("wb") as out:
        for event in sorted(events, key=event_time):
            out.write(orjson.dumps(event) + b"\n")
    return path


def test_a_poisoned_alert_is_dead_lettered_and_holds_back_nothing(sample_capture: Path, tmp_path: Path) -> None:
    capture = poisoned_capture(sample_capture, tmp_path / "capture.jsonl")
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        # Slack refuses the message about the hostile endpoint (whenever it comes: partitions run side by side).
        http.program_matching(HOOKS["slack-critical"], b"x@evil.test", Reply(400, b"invalid_payload"))
        env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"} | {
            "PAGERDUTY_INTEGRATION_KEY": "pd-key-for-run-test", "PAGERDUTY_EVENTS_URL": http.url("/v2/enqueue"),
            **{f"{name.upper().replace('-', '_')}_WEBHOOK": http.url(hook) for name, hook in HOOKS.items()},
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
            "SMTP_FROM": "tailwatch@example.test"}
        live = subprocess.run([sys.executable, "-m", "agents.cli", "run", "--from", str(capture),
                               "--exit-when-done"], capture_output=True, text=True, timeout=300, env=env)
        assert live.returncode == 0, live.stderr[-3000:]  # it exits: nothing waits behind the poisoned alert
        alerts = [AlertEvent.model_validate(orjson.loads(line)) for line in live.stdout.splitlines()]
        poisoned = next(a for a in alerts if "evil" in a.labels["endpoint"])
        assert poisoned.labels["endpoint"] == "/api/<!channel>/<b>&amp;\r\nBcc: x@evil.test `x`/:id"
        assert poisoned.severity == "CRITICAL" and "slack-critical" in poisoned.channels
        router = Router(dict.fromkeys(["pagerduty", "email", *HOOKS], True))
        expected = Counter(d.key for a in alerts for d in router.route(a).deliveries)
        refused = next(d.key for d in Router(dict.fromkeys(["slack-critical"], True)).route(poisoned).deliveries)
        requests = http.requests()
        assert requests and all(r.headers[KEY_HEADER] for r in requests)
        [first] = [r for r in http.requests(HOOKS["slack-critical"]) if r.reply.status == 400]
        assert first.headers[KEY_HEADER] == refused
        assert "&lt;!channel&gt;" in first.json()["text"] and "<!channel>" not in first.body.decode()
        assert "\\r\\nBcc" in first.json()["text"]  # shown on one line, escaped
        got = Counter(key for r in requests if r.reply.status < 300 for key in r.headers[KEY_HEADER].split(","))
        got += Counter(m.message[KEY_HEADER] for m in smtp.messages())
        assert got == expected - Counter([refused]), live.stderr[-3000:]  # every other delivery, once
        assert len(alerts) >= 5 and sum(got.values()) >= 8
        settled = [orjson.loads(line) for line in live.stderr.splitlines() if '"deliveries settled"' in line][-1]
        stats = settled["fields"]["channels"]
        assert stats["slack-critical"]["dead_lettered"] == 1 and stats["slack-critical"]["retried"] == 0
        dead = [orjson.loads(line)["fields"] for line in live.stderr.splitlines() if '"delivery failed; dead' in line]
        assert [(d["keys"], d["result"], d["attempt"]) for d in dead] == [([refused], "HTTP 400: invalid_payload", 1)]
