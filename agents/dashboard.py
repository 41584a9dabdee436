"""`/dashboard` on the worker's Faust web server (`tailwatch worker --web-port P`): the report page, live.

A `Dashboard` reads the metrics, service metrics and alerts topics (every partition, with its own consumer outside
the group, so each worker's page shows all endpoints and services) and keeps a bounded aggregate: closed endpoint
and service panes of the last `horizon_ms` of event time (24 h, the spec's widget range), de-duplicated by pane, and
the last `max_alerts` alert events. The metrics topic's records for the service stage (progress, held alerts) are
skipped, not counted as invalid. The service metrics topic is read once it exists (looked for again every few
seconds: it is created by the worker that runs the service stage).

Where it starts reading: the two metrics topics from the first message published (Kafka timestamp) at or after
`horizon_ms` + `READ_MARGIN_MS` before now, by the wall clock (ListOffsets by time, aiokafka's `offsets_for_times`);
a partition with nothing that new starts at its end, and messages published before that time are skipped (a broker
may answer the search loosely: the embedded one answers offset 0). So a (re)started worker re-reads about a day of
snapshots, not the topic's whole retention. The panes it keeps are still chosen by event time: a snapshot published
longer ago than that is not shown after a restart, even when its event time is within the horizon (a capture
replayed days ago). The alerts topic (a few events a day; the page shows the last `max_alerts`, and an alert that
has been firing for days needs its `firing` event) is read from the beginning. Routes:

- `/dashboard`: the page (`pipeline.report.html`), whose script swaps in a fresh `<main>` every few seconds;
- `/dashboard/main`: that `<main>` content;
- `/dashboard/data.json`: the report object (the `tailwatch report --json` keys).

Pages are rendered once per change of the aggregate, not per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

import faust
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from agents import kafka_clients
from agents.settings import KafkaSettings
from agents.topic_values import decode_alert, decode_endpoint_snapshot, decode_service_snapshot
from pipeline.report.build import build_report
from pipeline.report.html import render_html, render_main
from pipeline.report.services import ServiceTotals
from pipeline.report.snapshots import PaneTotals
from pipeline.windows import DAY_MS

log = logging.getLogger("tailwatch.dashboard")
T = TypeVar("T")

MAIN_PATH = "/dashboard/main"
REFRESH_MS = 3000
LOOK_FOR_TOPIC_S = 5.0  # how often a topic that does not exist yet is looked for again
READ_BATCH = 500  # snapshots decoded at a time (about 15 kB of JSON each): bounds the memory of a re-read at start
READ_MARGIN_MS = 60 * 60_000  # read this much more than the horizon: clock skew, lateness, panes published late


class Dashboard:
    def __init__(self, kafka: KafkaSettings, horizon_ms: int = DAY_MS, max_alerts: int = 10_000,
                 wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self.kafka = kafka
        self.horizon_ms = horizon_ms
        self.wall_ms = wall_ms
        self.panes = PaneTotals(horizon_ms)
        self.services = ServiceTotals(horizon_ms)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        self.alerts_version = 0
        self.invalid = 0  # messages skipped: not JSON, or not the topic's schema
        self._invalid_seen = 0
        self._rendered: dict[str, tuple[tuple[int, int, int], Any]] = {}
        self.reading = False  # `consume` has started (attach_dashboard starts it at the page's first request)
        self._since_ms: dict[str, int] = {}  # per metrics topic: messages published before this are not read

    def add(self, snapshots: list[dict[str, Any]], alerts: list[dict[str, Any]],
            services: list[dict[str, Any]] | None = None) -> None:
        changed = self.panes.add(snapshots) + self.services.add(services or [])
        if not changed and self.invalid != self._invalid_seen:
            self.panes.version += 1  # new skipped messages change the page too
        self._invalid_seen = self.invalid
        if alerts:
            self.alerts.extend(alerts)
            self.alerts_version += 1

    def _cached(self, name: str, make: Callable[[], T]) -> T:
        version = (self.panes.version, self.services.version, self.alerts_version)
        hit = self._rendered.get(name)
        if hit is None or hit[0] != version:
            hit = self._rendered[name] = (version, make())
        return cast(T, hit[1])

    def report(self) -> dict[str, Any]:
        topics = [self.kafka.topic(name) for name in ("metrics", "metrics.service", "alerts")]
        return self._cached("report", lambda: build_report(
            self.panes, None, list(self.alerts), "live", generated_from=topics, skipped=self.invalid,
            services=self.services))

    def page(self) -> str:
        return self._cached("page", lambda: render_html(self.report(), "tailwatch dashboard", MAIN_PATH, REFRESH_MS))

    def main(self) -> str:
        return self._cached("main", lambda: render_main(self.report()))

    def data(self) -> bytes:
        return self._cached("data", lambda: orjson.dumps(self.report()))

    def decode(self, topic: str, messages: list[ConsumerRecord[bytes, bytes]], into: dict[str, list[Any]]) -> None:
        """Messages of one topic's partition into `into[topic]`; an invalid one is counted and logged."""
        decode = {self.kafka.topic("metrics"): decode_endpoint_snapshot, self.kafka.topic("alerts"): decode_alert,
                  self.kafka.topic("metrics.service"): decode_service_snapshot}[topic]
        for message in messages:
            value = decode(message.value)
            if value is None:
                self.invalid += 1
                log.warning("dashboard skipped a message that does not match its topic's schema",
                            extra={"fields": {"topic": topic, "partition": message.partition,
                                              "offset": message.offset}})
            elif isinstance(value, dict):  # not a service-stage record (a `kind`) of the metrics topic
                into[topic].append(value)

    async def consume(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Read the topics (the metrics topics from a horizon ago, the alerts topic from the beginning), then follow
        them, until `should_stop()`. The metrics and alerts topics are waited for; the service metrics topic is added
        once it exists."""
        metrics, alerts = self.kafka.topic("metrics"), self.kafka.topic("alerts")
        service = self.kafka.topic("metrics.service")
        assert self.kafka.bootstrap
        self.reading = True
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
            await self._seek_to_start(consumer, partitions)
            looked_for = -LOOK_FOR_TOPIC_S
            while not should_stop():
                now = asyncio.get_running_loop().time()
                if partitions[-1].topic != service and now - looked_for >= LOOK_FOR_TOPIC_S:
                    looked_for = now
                    partitions = await self._add_topic(consumer, service, partitions)
                batch = await consumer.getmany(timeout_ms=500, max_records=READ_BATCH)
                into: dict[str, list[Any]] = {metrics: [], alerts: [], service: []}
                for tp, messages in batch.items():
                    self.decode(tp.topic, self._recent(tp.topic, messages), into)
                self.add(into[metrics], into[alerts], into[service])
        finally:
            await consumer.stop()

    def _recent(self, topic: str, messages: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
        """`messages` without those published before the start-up read's time (a broker may find the start offset
        loosely: the embedded one does)."""
        since_ms = self._since_ms.get(topic)
        if since_ms is None:
            return messages
        return [m for m in messages if m.timestamp < 0 or m.timestamp >= since_ms]

    async def _seek_to_start(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Each of `partitions` to where the start-up read begins: the alerts topic's at the beginning, the metrics
        topics' at the first message published since `horizon_ms + READ_MARGIN_MS` ago, or at the end when there is
        none that new."""
        alerts = [tp for tp in partitions if tp.topic == self.kafka.topic("alerts")]
        metrics = [tp for tp in partitions if tp.topic != self.kafka.topic("alerts")]
        if alerts:
            await consumer.seek_to_beginning(*alerts)
        if not metrics:
            return
        ends = await consumer.end_offsets(metrics)  # before the search: what is published after it is read
        since_ms = self.wall_ms() - self.horizon_ms - READ_MARGIN_MS
        self._since_ms.update({tp.topic: since_ms for tp in metrics})
        found = await consumer.offsets_for_times({tp: since_ms for tp in metrics})
        for tp in metrics:
            start = found.get(tp)
            # nothing at or after `since` in the partition: Kafka answers None, the embedded broker offset 0 with
            # timestamp -1 (as in agents/log_history.py)
            consumer.seek(tp, ends[tp] if start is None or start.timestamp < 0 else start.offset)

    async def _add_topic(self, consumer: AIOKafkaConsumer, topic: str,
                         partitions: list[TopicPartition]) -> list[TopicPartition]:
        """`partitions` and, when `topic` exists now, its partitions (assigned, read from a horizon ago)."""
        cluster = await consumer._client.fetch_all_metadata()  # the consumer's own tracks its assigned topics only
        found = cluster.partitions_for_topic(topic)
        if not found:
            return partitions
        added = [TopicPartition(topic, p) for p in sorted(found)]
        positions = {tp: await consumer.position(tp) for tp in partitions}
        consumer.assign(partitions + added)  # a new assignment: positions start over …
        for tp, position in positions.items():
            consumer.seek(tp, position)  # … so each goes on where it was
        await self._seek_to_start(consumer, added)
        return partitions + added


def attach_dashboard(app: faust.App, kafka: KafkaSettings) -> Dashboard | None:
    """Serve /dashboard on `app`'s web server (when it has one) and feed it from the topics — from the first request
    on: a worker nobody looks at holds nothing for it (24 h of panes is ~7.7 MB an endpoint), and a restart of such a
    worker reads no topic history back. The page refreshes itself, so what is read shows on its next refresh."""
    if not app.conf.web_enabled:
        return None
    dashboard = Dashboard(kafka)
    opened = asyncio.Event()

    async def page(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        opened.set()
        return view.html(dashboard.page())

    async def main(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        opened.set()
        return view.html(dashboard.main())

    async def data(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        opened.set()
        return view.bytes(dashboard.data(), content_type="application/json")

    app.page("/dashboard", name="dashboard")(page)
    app.page(MAIN_PATH, name="dashboard_main")(main)
    app.page("/dashboard/data.json", name="dashboard_data")(data)

    async def follow() -> None:
        await opened.wait()
        await dashboard.consume(lambda: app.should_stop)

    app.task(follow)
    return dashboard
