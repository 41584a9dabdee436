"""One channel's delivery loop: its own queue and task, so a failing channel never blocks another.

Per channel: alerts are grouped (`group_wait`), sent within the rate limit, retried with exponential backoff
and jitter (at least Retry-After), and after the last attempt (or a permanent error) handed over as dead
letters. Every outcome goes to `on_outcome`, which records it before the alert event is acknowledged.

On stop (`stop()`) a channel takes no new group; the attempt in flight finishes and its outcome is recorded, but
a group that would wait (a retry, the rate limit) is left without an outcome: its alert events stay
unacknowledged, and the next start sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from agents.notify.config import Channel
from agents.notify.senders import Attempt, Sender
from pipeline.notify.grouping import GroupBuffer
from pipeline.notify.rate_limit import SendWindow
from pipeline.notify.retry import backoff_ms
from pipeline.notify.routing import PlannedDelivery
from schemas.rules import duration_ms

log = logging.getLogger("tailwatch.notify")

Outcome = Literal["delivered", "dead_lettered"]
OnOutcome = Callable[[Channel, list[PlannedDelivery], Outcome, int, Attempt], Awaitable[None]]


def now_ms() -> int:
    return int(time.monotonic() * 1000)


class ChannelWorker:
    def __init__(self, channel: Channel, sender: Sender, on_outcome: OnOutcome,
                 rng: Callable[[], float] = random.random,
                 on_attempt: Callable[[str, bool], None] | None = None) -> None:
        self.channel = channel
        self.on_attempt = on_attempt  # (channel, succeeded) per attempt: the notifier's /metrics
        self.sender = sender
        self.on_outcome = on_outcome
        self.rng = rng
        self.queue: asyncio.Queue[PlannedDelivery] = asyncio.Queue()
        grouping = (channel.group_wait_ms, channel.group_interval_ms) if sender.groups else (0, 0)
        self.buffer: GroupBuffer[PlannedDelivery] = GroupBuffer(grouping[0], group_interval_ms=grouping[1])
        self.window = SendWindow(*channel.rate_limit)
        retry = channel.spec.retry
        self.max_attempts = retry.max_attempts
        self.initial_ms = duration_ms(retry.initial)
        self.max_ms = duration_ms(retry.max)
        self.busy = False
        self.sent = self.retried = self.dead = 0
        self.left_unsent = 0  # groups left without an outcome by a stop
        self._stopping = asyncio.Event()

    def submit(self, delivery: PlannedDelivery) -> None:
        self.queue.put_nowait(delivery)

    def stop(self) -> None:
        self._stopping.set()

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if a stop comes; True when it did."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    @property
    def idle(self) -> bool:
        return not self.busy and self.queue.empty() and not self.buffer.pending

    async def run(self) -> None:
        while not self._stopping.is_set():
            if not self.buffer.pending:
                self.buffer.add(await self.queue.get(), now_ms())
            while not self.queue.empty():
                self.buffer.add(self.queue.get_nowait(), now_ms())
            due = self.buffer.due_ms()
            if due is not None and due > now_ms():
                with contextlib.suppress(TimeoutError):
                    self.buffer.add(await asyncio.wait_for(self.queue.get(), (due - now_ms()) / 1000), now_ms())
                continue
            group = self.buffer.take(now_ms())
            if group:
                self.busy = True
                try:
                    await self.deliver(group)
                finally:
                    self.busy = False

    async def deliver(self, group: list[PlannedDelivery]) -> None:
        attempt = 0
        while True:
            wait = self.window.wait_ms(now_ms())
            if wait > 0 and await self._stopped_within(wait / 1000):
                self._leave(group, attempt)
                return
            self.window.record(now_ms())
            attempt += 1
            try:
                result = await self.sender.send(group)
            except Exception as error:  # a sender bug must not stop the channel: count it as a failed attempt
                log.exception("sender raised", extra={"fields": {"channel": self.channel.name}})
                result = Attempt("retry", f"unexpected error: {type(error).__name__}")
            if self.on_attempt is not None:
                self.on_attempt(self.channel.name, result.verdict == "ok")
            fields = {"channel": self.channel.name, "alerts": len(group), "attempt": attempt,
                      "result": result.reason, "keys": [d.key for d in group]}
            if result.verdict == "ok":
                self.sent += 1
                log.info("delivered", extra={"fields": fields})
                await self._record(group, "delivered", attempt, result)
                return
            if result.verdict == "fail" or attempt >= self.max_attempts:
                self.dead += 1
                log.error("delivery failed; dead-lettered", extra={"fields": fields})
                await self._record(group, "dead_lettered", attempt, result)
                return
            if self._stopping.is_set():
                self._leave(group, attempt)
                return
            pause = backoff_ms(attempt, self.initial_ms, self.max_ms, self.rng(), result.retry_after_ms)
            self.retried += 1
            log.warning("delivery failed; retrying", extra={"fields": {**fields, "retry_in_ms": pause}})
            if await self._stopped_within(pause / 1000):
                self._leave(group, attempt)
                return

    def _leave(self, group: list[PlannedDelivery], attempts: int) -> None:
        self.left_unsent += 1
        log.info("stopping: delivery left for the next start", extra={"fields": {
            "channel": self.channel.name, "attempts": attempts, "keys": [d.key for d in group]}})

    async def _record(self, group: list[PlannedDelivery], outcome: Outcome, attempt: int, result: Attempt) -> None:
        try:
            await self.on_outcome(self.channel, group, outcome, attempt, result)
        except Exception:  # the channel goes on; the unrecorded alerts are not acknowledged, so a restart resends
            log.exception("could not record a delivery outcome", extra={"fields": {
                "channel": self.channel.name, "keys": [d.key for d in group]}})
