"""`/dashboard` on the worker's Faust web server (`tailwatch worker --web-port P`): the report page, live.

A `Dashboard` reads the whole metrics and alerts topics (every partition, with its own consumer outside the group,
so each worker's page shows all endpoints) from the beginning, and keeps a bounded aggregate: closed-pane snapshots
of the last `horizon_ms` of event time (24 h, the spec's widget range), de-duplicated by pane, and the last
`max_alerts` alert events. Routes:

- `/dashboard`: the page (`pipeline.report.html`), whose script swaps in a fresh `<main>` every few seconds;
- `/dashboard/main`: that `<main>` content;
- `/dashboard/data.json`: the report object (the `tailwatch report --json` keys).

Pages are rendered once per change of the aggregate, not per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

import faust
import orjson
from aiokafka import TopicPartition

from agents import kafka_clients
from agents.settings import KafkaSettings
from agents.topic_values import decode_alert, decode_snapshot
from pipeline.report.build import build_report
from pipeline.report.html import render_html, render_main
from pipeline.report.snapshots import PaneTotals
from pipeline.windows import DAY_MS

log = logging.getLogger("tailwatch.dashboard")
T = TypeVar("T")

MAIN_PATH = "/dashboard/main"
REFRESH_MS = 3000
READ_BATCH = 500  # snapshots decoded at a time (about 15 kB of JSON each): bounds the memory of a re-read at start


class Dashboard:
    def __init__(self, kafka: KafkaSettings, horizon_ms: int = DAY_MS, max_alerts: int = 10_000) -> None:
        self.kafka = kafka
        self.panes = PaneTotals(horizon_ms)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        self.alerts_version = 0
        self.invalid = 0  # messages skipped: not JSON, or not the topic's schema
        self._invalid_seen = 0
        self._rendered: dict[str, tuple[tuple[int, int], Any]] = {}

    def add(self, snapshots: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> None:
        if not self.panes.add(snapshots) and self.invalid != self._invalid_seen:
            self.panes.version += 1  # new skipped messages change the page too
        self._invalid_seen = self.invalid
        if alerts:
            self.alerts.extend(alerts)
            self.alerts_version += 1

    def _cached(self, name: str, make: Callable[[], T]) -> T:
        version = (self.panes.version, self.alerts_version)
        hit = self._rendered.get(name)
        if hit is None or hit[0] != version:
            hit = self._rendered[name] = (version, make())
        return cast(T, hit[1])

    def report(self) -> dict[str, Any]:
        return self._cached("report", lambda: build_report(
            self.panes, None, list(self.alerts), "live", generated_from=[self.kafka.topic("metrics"),
                                                                         self.kafka.topic("alerts")],
            skipped=self.invalid))

    def page(self) -> str:
        return self._cached("page", lambda: render_html(self.report(), "tailwatch dashboard", MAIN_PATH, REFRESH_MS))

    def main(self) -> str:
        return self._cached("main", lambda: render_main(self.report()))

    def data(self) -> bytes:
        return self._cached("data", lambda: orjson.dumps(self.report()))

    async def consume(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Read both topics from the beginning, then follow them, until `should_stop()`."""
        metrics, alerts = self.kafka.topic("metrics"), self.kafka.topic("alerts")
        assert self.kafka.bootstrap
        consumer = kafka_clients.consumer(bootstrap=self.kafka.bootstrap, security=self.kafka.security,
                                          enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions: list[TopicPartition] = []
            for topic in (metrics, alerts):
                found = consumer.partitions_for_topic(topic)
                while not found and not should_stop():
                    await consumer._client.force_metadata_update()
                    found = consumer.partitions_for_topic(topic)
                    if not found:
                        await asyncio.sleep(0.5)
                partitions += [TopicPartition(topic, p) for p in sorted(found or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not should_stop():
                batch = await consumer.getmany(timeout_ms=500, max_records=READ_BATCH)
                snapshots: list[dict[str, Any]] = []
                events: list[dict[str, Any]] = []
                for tp, messages in batch.items():
                    into, decode = (snapshots, decode_snapshot) if tp.topic == metrics else (events, decode_alert)
                    for message in messages:
                        value = decode(message.value)
                        if value is None:
                            self.invalid += 1
                            log.warning("dashboard skipped a message that does not match its topic's schema",
                                        extra={"fields": {"topic": tp.topic, "partition": tp.partition,
                                                          "offset": message.offset}})
                        else:
                            into.append(value)
                self.add(snapshots, events)
        finally:
            await consumer.stop()


def attach_dashboard(app: faust.App, kafka: KafkaSettings) -> Dashboard | None:
    """Serve /dashboard on `app`'s web server (when it has one) and feed it from the topics."""
    if not app.conf.web_enabled:
        return None
    dashboard = Dashboard(kafka)

    async def page(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.html(dashboard.page())

    async def main(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.html(dashboard.main())

    async def data(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.bytes(dashboard.data(), content_type="application/json")

    app.page("/dashboard", name="dashboard")(page)
    app.page(MAIN_PATH, name="dashboard_main")(main)
    app.page("/dashboard/data.json", name="dashboard_data")(data)

    async def follow() -> None:
        await dashboard.consume(lambda: app.should_stop)

    app.task(follow)
    return dashboard
