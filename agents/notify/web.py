"""`tailwatch notify --web-port P`: the notifier's `GET /health` and `GET /metrics` on its Faust web server.

/health has the worker's shape (pipeline.health): `broker` (a fresh Metadata request answers), `agents` (the
notify agent runs), `channels` (at least one channel is active: its secrets are set); the lag and record-age
checks do not apply to the notifier and always pass. /metrics: notification attempts and failures per channel
(`tailwatch_notification_attempts_total`, `tailwatch_notification_failures_total`), and the ledger records the
notifier holds (`tailwatch_ledger_records_held`: deliveries in flight, alert states, read offsets; bounded by open
alerts, see agents/notify/ledger.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily

from agents.health import agents_running, broker_answers, now_ms
from agents.worker_metrics import CONTENT_TYPE
from pipeline.health import HealthFacts, HealthLimits, HealthReport, evaluate

if TYPE_CHECKING:
    from agents.notify.notifier import Notifier

STARTED_MS = now_ms()


async def notifier_health(notifier: Notifier) -> HealthReport:
    bootstrap = notifier.settings.kafka.bootstrap
    assert bootstrap
    error = await broker_answers(bootstrap, security=notifier.settings.kafka.security)
    facts = HealthFacts(broker_ok=error is None, broker_error=error, agents_running=agents_running(notifier.app),
                        started_ms=STARTED_MS, channels_configured=frozenset(c.name for c in notifier.active))
    return evaluate(facts, HealthLimits(max_record_age_ms=0), now_ms())


class LedgerCollector:
    """What the ledger holds, read at scrape time."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("tailwatch_ledger_records_held", "Live records of the deliveries ledger the notifier "
                                "holds (deliveries in flight, alert states, read offsets)",
                                value=self.notifier.ledger.held)


def attach_notifier_web(notifier: Notifier) -> None:
    from faust.web import Request, Response, View  # noqa: PLC0415 - Faust is slow to import

    app = notifier.app
    notifier.telemetry.registry.register(LedgerCollector(notifier))

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            report = await notifier_health(notifier)
            return self.json(report.body, status=report.http_status)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(notifier.telemetry.exposition(), content_type=CONTENT_TYPE)
