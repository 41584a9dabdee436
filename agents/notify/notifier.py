"""The notifier: a Faust agent on the alerts topic that routes each alert event to its channels' workers.

Effectively once: the deliveries ledger (a compacted topic, agents/notify/ledger.py) is read at start. Each
outcome is recorded there before the alert event is acknowledged, and events are acknowledged only when all their
deliveries have an outcome, and only after the ledger holds their alert's state and the partition's read offset;
a restart skips the events before that offset, routes from the alerts' states, re-reads the unfinished events and
sends exactly what has no outcome yet. The one window left: a crash after a channel accepted a message and before
its record reached Kafka sends that one message again (PagerDuty de-duplicates it by `dedup_key`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import faust
from faust.types import EventT
from pydantic import ValidationError

from agents import kafka_clients
from agents.faust_web import BUILT_IN_VIEWS_OFF
from agents.fetch_wait import keep_fetch_wait_short
from agents.notify.config import Channel
from agents.notify.delivery import ChannelWorker, Outcome
from agents.notify.ledger import LedgerWriter
from agents.notify.senders import Attempt, make_sender
from agents.settings import KafkaSettings
from agents.worker_metrics import TailwatchMetrics
from pipeline.notify.ledger_state import Acknowledged, LedgerState
from pipeline.notify.routing import AlertStatus, PlannedDelivery, Router
from schemas.alerts import AlertEvent
from schemas.deliveries import AlertSource, Delivery, NotificationDeadLetter

log = logging.getLogger("tailwatch.notify")

SETTLED_EVERY_S = 0.2
STOP_WAIT_S = 5.0  # longest wait for sends in flight on stop (`tailwatch run` kills a child after 10 s)


def deliveries_topic(kafka: KafkaSettings) -> str:
    return kafka.topic("deliveries")


def notify_deadletter_topic(kafka: KafkaSettings) -> str:
    return kafka.topic("notify.deadletter")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class NotifierSettings:
    kafka: KafkaSettings
    channels: list[Channel]
    ledger: LedgerState
    app_id: str = "tailwatch-notifier"
    session_timeout_s: float = 5.0
    data_dir: str = "./tailwatch-data"
    web_port: int | None = None  # /health and /metrics (agents/notify/web.py)
    web_bind: str = "127.0.0.1"


class Notifier:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        kafka = settings.kafka
        assert kafka.bootstrap, "the notifier needs a bootstrap address"
        self.ledger = settings.ledger
        self.active = [channel for channel in settings.channels if channel.active]
        self.router = Router({channel.name: channel.send_resolved for channel in self.active})
        self._loaded_writes = self.ledger.loaded()  # first: it may add alert states (from an older ledger)
        self.router.restore(self.ledger.statuses())
        self.waiting: dict[str, list[EventT[bytes]]] = {}  # delivery key → the events waiting for it
        self.outstanding: dict[int, int] = {}  # id(event) → deliveries it still waits for
        # Events read, per partition in offset order, until acknowledged. Faust commits the first run of consecutive
        # acked offsets it holds, so an ack that overtakes an earlier, still-unfinished event (one retrying on a
        # slow channel) would commit past it, and a restart would skip it: acks go out in offset order only.
        self.unacked: dict[int, deque[EventT[bytes]]] = {}
        self.finished: set[int] = set()  # id(event) of events finished but not acknowledged yet
        self.status_after: dict[int, AlertStatus | None] = {}  # id(event) → its alert's status right after it
        self.to_ack: list[EventT[bytes]] = []  # finished in offset order: acknowledged once the ledger has them
        self.acking = False
        self.has_acks = asyncio.Event()
        # partition → next offset (all before it handled or in flight); from the ledger's read offsets at start, so
        # a partition that has nothing new after a restart is reported settled too
        self.positions: dict[int, int] = dict(self.ledger.read)
        self.workers: dict[str, ChannelWorker] = {}
        self.channel_tasks: list[asyncio.Task[None]] = []
        self.started = asyncio.Event()
        self.writer = LedgerWriter(kafka.bootstrap, deliveries_topic(kafka), notify_deadletter_topic(kafka),
                                   self.ledger, security=kafka.security)
        self.unavailable_warned: set[str] = set()
        self.events = self.invalid = self.skipped_done = self.already_handled = self.stale = 0
        self._settled_logged: dict[int, int] | None = None
        self.app = faust.App(
            settings.app_id, store="memory://",
            **kafka_clients.faust_broker_settings(kafka.bootstrap, security=kafka.security,
                                                  create_topics=kafka.create_topics), datadir=settings.data_dir,
            topic_partitions=kafka.partitions, topic_replication_factor=kafka.replication_factor,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=min(1.0, settings.session_timeout_s / 4),
            broker_rebalance_timeout=settings.session_timeout_s, stream_recovery_delay=0.0,
            consumer_auto_offset_reset="earliest", topic_disable_leader=True,
            web_enabled=settings.web_port is not None, web_port=settings.web_port or 6067,
            web_host="127.0.0.1", web_bind=settings.web_bind,
            **BUILT_IN_VIEWS_OFF,
            producer_acks=-1, stream_wait_empty=False, broker_commit_interval=0.5)
        self.alerts = self.app.topic(kafka.topic("alerts"), value_type=bytes, key_type=bytes,
                                     value_serializer="raw", key_serializer="raw", partitions=kafka.partitions)
        self.app.agent(self.alerts, name="notify")(self._agent)
        self.app.task(self._start)
        self.app.timer(SETTLED_EVERY_S)(self._log_settled)
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        keep_fetch_wait_short(self.app)
        self.session: aiohttp.ClientSession | None = None
        self.telemetry = TailwatchMetrics()

    async def _start(self) -> None:
        await self.writer.start()
        await self.writer.write(*self._loaded_writes)
        asyncio.get_running_loop().create_task(self._acknowledge(), name="acknowledge")
        self.session = session = aiohttp.ClientSession()
        for channel in self.active:
            worker = ChannelWorker(channel, make_sender(channel, session), self._on_outcome,
                                   on_attempt=self.telemetry.notification)
            self.workers[channel.name] = worker
            self.channel_tasks.append(asyncio.get_running_loop().create_task(worker.run(),
                                                                             name=f"channel {channel.name}"))
        self.started.set()

    async def _on_shutdown(self, app: faust.App, **_: Any) -> None:
        """After Faust stopped the consumer: the sends in flight finish and are recorded (their events are
        acknowledged, and Faust commits them as it stops), within `STOP_WAIT_S`; what waits for a retry or was
        not sent yet stays unacknowledged, for the next start."""
        for worker in self.workers.values():
            worker.stop()
        deadline = time.monotonic() + STOP_WAIT_S
        while any(worker.busy for worker in self.workers.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # their outcomes are recorded: now their events' acknowledgements (alert states, read offsets) land too
        while (self.to_ack or self.acking) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self.channel_tasks:
            task.cancel()
        await asyncio.gather(*self.channel_tasks, return_exceptions=True)
        log.info("notifier stopped", extra={"fields": {
            "unfinished_events": sum(len(queue) for queue in self.unacked.values()),
            "left_unsent": sum(worker.left_unsent for worker in self.workers.values())}})
        if self.session is not None:
            await self.session.close()
        await self.writer.stop()

    async def _agent(self, stream: faust.StreamT[bytes]) -> None:
        manual_ack: Any = stream.noack()  # type: ignore[attr-defined]  # acked once every delivery has an outcome
        async for event in manual_ack.events():
            await self.started.wait()  # the ledger writer and the channel workers start with the app
            await self.handle(event)

    async def handle(self, event: EventT[bytes]) -> None:
        message = event.message
        self.events += 1
        self.unacked.setdefault(message.partition, deque()).append(event)
        try:
            await self._handle(event)
        finally:  # only now can "deliveries settled" count this event
            self.positions[message.partition] = max(self.positions.get(message.partition, 0), message.offset + 1)

    async def _handle(self, event: EventT[bytes]) -> None:
        message = event.message
        self.status_after[id(event)] = None
        if self.ledger.handled(message.partition, message.offset):  # before the ledger's read offset: done
            self.already_handled += 1
            self._finish(event)
            return
        try:
            alert = AlertEvent.model_validate_json(event.value or b"")
        except ValidationError as error:
            self.invalid += 1
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
            log.error("invalid alert event; dead-lettered", extra={"fields": {
                "partition": message.partition, "offset": message.offset, "reason": reason}})
            await self.writer.dead_letter(NotificationDeadLetter(
                key=None, channel=None, kind=None, attempts=0, reason=f"invalid alert event: {reason}",
                last_status=None, failed_at=_iso_now(), alert=None,
                excerpt=bytes(event.value or b"")[:512].decode("utf-8", "replace")[:512]))
            self._finish(event)
            return
        routed = self.router.route(alert)
        if routed.stale:
            self.stale += 1
        else:
            self.status_after[id(event)] = self.router.status(alert.fingerprint)
        for name in routed.unavailable:
            if name not in self.unavailable_warned:
                self.unavailable_warned.add(name)
                log.warning("alerts name a channel that is not active; skipped",
                            extra={"fields": {"channel": name, "rule": alert.rule}})
        todo = []
        for delivery in routed.deliveries:
            if self.ledger.has(delivery.key):
                self.skipped_done += 1
                continue
            todo.append(delivery)
        self.outstanding[id(event)] = len(todo)
        for delivery in todo:
            waiters = self.waiting.setdefault(delivery.key, [])
            waiters.append(event)
            if len(waiters) == 1:  # the same event published twice: one delivery for both
                self.workers[delivery.channel].submit(delivery)
        if not todo:
            self._finish(event)

    def _finish(self, event: EventT[bytes]) -> None:
        self.outstanding.pop(id(event), None)
        self.finished.add(id(event))
        queue = self.unacked.get(event.message.partition)
        while queue and id(queue[0]) in self.finished:
            head = queue.popleft()
            self.finished.discard(id(head))
            self.to_ack.append(head)
            self.has_acks.set()

    async def _acknowledge(self) -> None:
        """Acknowledge finished events once the ledger holds their alerts' states and read offsets."""
        while True:
            await self.has_acks.wait()
            self.has_acks.clear()
            events, self.to_ack = self.to_ack, []
            self.acking = True
            try:
                steps, expired = self.ledger.acknowledge([Acknowledged(
                    e.message.partition, e.message.offset, self.status_after.pop(id(e), None)) for e in events])
                await self.writer.write(*steps)
                for status in expired:
                    self.router.forget(status)
                for event in events:
                    event.ack()
            except Exception:  # a bug: no later event may be acknowledged past these, so acknowledging stops here
                log.exception("could not acknowledge alert events; no further event will be acknowledged")
                raise
            finally:
                self.acking = False

    async def _on_outcome(self, channel: Channel, group: list[PlannedDelivery], outcome: Outcome, attempts: int,
                          result: Attempt) -> None:
        finished = _iso_now()
        records = []
        for delivery in group:
            first = self.waiting[delivery.key][0].message
            records.append(Delivery(
                key=delivery.key, fingerprint=delivery.alert.fingerprint, transition=delivery.transition,
                channel=channel.name, kind=delivery.kind, outcome=outcome, attempts=attempts, finished_at=finished,
                rule=delivery.alert.rule, severity=delivery.alert.severity,
                source=AlertSource(partition=first.partition, offset=first.offset)))
            if outcome == "dead_lettered":
                await self.writer.dead_letter(NotificationDeadLetter(
                    key=delivery.key, channel=channel.name, kind=delivery.kind, attempts=attempts,
                    reason=result.reason, last_status=result.status, failed_at=finished,
                    alert=delivery.alert.model_dump(mode="json")))
        await self.writer.write(self.ledger.record(records))
        for record in records:
            for event in self.waiting.pop(record.key, []):
                left = self.outstanding.get(id(event), 0) - 1
                self.outstanding[id(event)] = left
                if left <= 0:
                    self._finish(event)

    @property
    def settled(self) -> bool:
        return (self.started.is_set() and not self.waiting and not self.to_ack and not self.acking
                and all(worker.idle for worker in self.workers.values()))

    async def _log_settled(self) -> None:
        """Say when every alert read so far has all its outcomes (`tailwatch run --exit-when-done` waits for it)."""
        if self.settled and self.positions != self._settled_logged:
            self._settled_logged = dict(self.positions)
            log.info("deliveries settled", extra={"fields": {
                "positions": {str(p): o for p, o in sorted(self.positions.items())}, "events": self.events,
                "invalid": self.invalid, "already_delivered": self.skipped_done,
                "already_handled": self.already_handled, "stale": self.stale,
                "ledger": {"deliveries": len(self.ledger.deliveries), "alerts": len(self.ledger.alerts),
                           "router_alerts": self.router.alerts_held, "restatements": self.writer.restatements,
                           "write_failures": self.writer.failures},
                "channels": {name: {"sent": w.sent, "retried": w.retried, "dead_lettered": w.dead}
                             for name, w in self.workers.items()}}})
