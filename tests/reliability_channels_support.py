"""Shared by the channel reliability tests (tests/reliability/test_channel_*.py, test_pipeline_crashes_deliveries.py):
a small multi-incident capture, a channel file with fast retries for all five channels, the loopback receivers'
environment, and counting what each channel received by delivery key."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from pipeline.notify.routing import Router
from pipeline.synthetic import DEMO_START_MS, MINUTE_MS, Incident, TrafficMix, generate_events, render_capture
from schemas.alerts import AlertEvent
from tests.receivers import HttpReceiver, Reply, SmtpReceiver, SmtpReply

KEY_HEADER = "X-Tailwatch-Delivery-Key"
PD_PATH = "/v2/enqueue"
HOOKS = {"slack-critical": "/services/T1/B1/crit", "slack-alerts": "/services/T1/B2/alerts",
         "slack-monitoring": "/services/T1/B3/mon"}
CHANNELS = ("pagerduty", *HOOKS, "email")
SECRET_VARS = ("PAGERDUTY_INTEGRATION_KEY", "SLACK_CRITICAL_WEBHOOK", "SLACK_ALERTS_WEBHOOK",
               "SLACK_MONITORING_WEBHOOK", "SMTP_HOST", "SMTP_PASSWORD")


def _at(minute: int) -> int:
    return DEMO_START_MS + minute * MINUTE_MS


# 24 minutes at 240 requests/min (~5.8k events, 8 MB): a service down, D1 failures and a 5xx burst overlap, so
# CRITICAL rules page (pagerduty + slack-critical), tiers escalate and de-escalate (slack-alerts, email,
# slack-monitoring) and most alerts resolve before the end: ~30 alert events, ~50 deliveries over five channels.
INCIDENTS = (
    Incident("down", "/api/public/factory/build-specs/:runId", _at(3), _at(10), 0.85),
    Incident("d1_failures", "/api/public/factory/templates", _at(12), _at(17), 0.40),
    Incident("errors", "/api/public/factory/build-specs", _at(2), _at(14), 0.25),
)


def incident_capture(path: Path, minutes: int = 24, seed: int = 3) -> Path:
    """The capture (JSON Lines, deliveries up to 3 s out of order)."""
    events = generate_events(seed, DEMO_START_MS, minutes, 240, incidents=INCIDENTS, disorder_ms=3_000,
                             mix=TrafficMix(not_found_rate=0.01, request_cf="none"))
    with path.open("wb") as out:
        for chunk in render_capture(events, "jsonl"):
            out.write(chunk)
    return path


def channel_file(path: Path, max_attempts: int = 40, initial: str = "100ms", max_: str = "500ms") -> Path:
    """All five channels, each sending at once (no grouping), fast retries, rate limits out of the way."""
    retry = f"retry: {{max_attempts: {max_attempts}, initial: {initial}, max: {max_}, timeout: 5s}}"
    rate = "rate_limit: {max: 100, per: 1s}"
    slack = "\n".join(f"""  {name}:
    type: slack
    webhook_url: ${name.upper().replace('-', '_')}_WEBHOOK
    channel: "#{name}"
    {retry}
    {rate}""" for name in HOOKS)
    path.write_text(f"""version: 1
channels:
  pagerduty:
    type: pagerduty
    integration_key: $PAGERDUTY_INTEGRATION_KEY
    {retry}
    {rate}
{slack}
  email:
    type: email
    recipients: [oncall@example.test, lead@example.test]
    {retry}
    {rate}
""")
    return path


def channel_env(http: HttpReceiver, smtp: SmtpReceiver) -> dict[str, str]:
    return {"PAGERDUTY_INTEGRATION_KEY": "pd-routing-key-reliability", "PAGERDUTY_EVENTS_URL": http.url(PD_PATH),
            **{f"{name.upper().replace('-', '_')}_WEBHOOK": http.url(hook) for name, hook in HOOKS.items()},
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
            "SMTP_FROM": "tailwatch@example.test"}


def expected_deliveries(alerts: list[dict[str, Any]]) -> Counter[str]:
    """The delivery keys an undisturbed run sends, each once: the alerts routed as the notifier routes them."""
    router = Router(dict.fromkeys(CHANNELS, True))
    return Counter(d.key for alert in alerts for d in router.route(AlertEvent.model_validate(alert)).deliveries)


def channel_of(key: str) -> str:
    return key.rsplit("/", 1)[1]


class StampedHttp(HttpReceiver):
    """An HttpReceiver that also notes when each request arrived (monotonic seconds), in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.stamps.append(time.monotonic())
        return await super()._handle(request)


def http_accepted(http: HttpReceiver) -> list[tuple[str, int]]:
    """(delivery key, request index) for every request the receiver accepted (answered 2xx)."""
    out = []
    for index, request in enumerate(http.requests()):
        if request.answered and request.reply.status < 300:
            out.extend((key, index) for key in request.headers[KEY_HEADER].split(","))
    return out


def pagerduty_identities(http: HttpReceiver) -> Counter[tuple[str, str]]:
    """(dedup_key, event_action) of every PagerDuty event accepted."""
    return Counter((body["dedup_key"], body["event_action"]) for body in
                   (r.json() for r in http.requests(PD_PATH) if r.answered and r.reply.status < 300))


def delivered(http: HttpReceiver, smtp: SmtpReceiver) -> Counter[str]:
    """Every delivery key the channels received (HTTP: accepted requests; SMTP: accepted messages)."""
    keys = Counter(key for key, _ in http_accepted(http))
    keys.update(key.strip() for m in smtp.messages() for key in str(m.message[KEY_HEADER]).split(","))
    return keys


class SmtpClock:
    """Notes when the SMTP receiver's message count grows (polled every 10 ms), so e-mails can be timed too."""

    def __init__(self, smtp: SmtpReceiver) -> None:
        self.smtp = smtp
        self.stamps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            count = len(self.smtp.messages())
            while len(self.stamps) < count:
                self.stamps.append(time.monotonic())
            time.sleep(0.01)

    def __enter__(self) -> SmtpClock:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def settled_stats(stderr: str) -> dict[str, Any]:
    """The channel counters of the last "deliveries settled" log line."""
    lines = [line for line in stderr.splitlines() if '"deliveries settled"' in line]
    return dict(orjson.loads(lines[-1])["fields"]) if lines else {}


def refuse(http: HttpReceiver, smtp: SmtpReceiver) -> None:
    """From now on every channel turns deliveries away (HTTP 503, SMTP 451): nothing new is accepted."""
    http.default = Reply(503, b"refusing for a moment")
    smtp.program(*[SmtpReply(451, "try again later")] * 10_000)


def accept(http: HttpReceiver, smtp: SmtpReceiver) -> None:
    http.default = Reply()
    with smtp._lock:
        smtp._programs.clear()
