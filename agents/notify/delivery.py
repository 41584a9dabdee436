"""One channel's delivery loop: its own queue and task, so a failing channel never blocks another.

Per channel: alerts are grouped (`group_wait`), sent within the rate limit, retried with exponential backoff
and jitter (at least Retry-After), and after the last attempt handed over as dead letters. A permanent failure
(a message that cannot be built, HTTP 4xx other than 408/425/429, SMTP 5xx) is dead-lettered at once, with
its reason; a group refused that way is sent again alert by alert, so only the refused alert is lost. Every
outcome goes to `on_outcome`, which records it before the alert event is acknowledged.

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
from pipeline.notify.parking import RetrySchedule
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
        self.retries: RetrySchedule[PlannedDelivery] = RetrySchedule(lambda d: d.alert.fingerprint)
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

    async def _next(self, timeout_s: float | None) -> None:
        """Wait for the next submitted delivery (into the buffer), at most `timeout_s`, or until a stop."""
        get = asyncio.ensure_future(self.queue.get())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({get, stopping}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if get.done() and not get.cancelled():
                self.buffer.add(get.result(), now_ms())
            else:
                get.cancel()

    @property
    def idle(self) -> bool:
        return not self.busy and self.queue.empty() and not self.buffer.pending and self.retries.empty

    async def run(self) -> None:
        while not self._stopping.is_set():
            while not self.queue.empty():
                self.buffer.add(self.queue.get_nowait(), now_ms())
            now = now_ms()
            parked = self.retries.take_due(now)
            if parked is not None:
                await self._attempt(parked.group, parked.attempts)
                continue
            starting = self.retries.may_start(now)
            if starting:
                group = self.retries.sendable(self.buffer.take(now))
                if group:
                    await self._attempt(group, 0)
                    continue
            wake = [t for t in (self.buffer.due_ms() if starting else None, self.retries.next_due_ms(),
                                self.retries.paused_until_ms if self.buffer.pending else None)
                    if t is not None and t > now]
            if self.buffer.pending and starting and not wake:
                continue  # a group is due now
            await self._next(None if not wake else (min(wake) - now) / 1000)
        self.left_unsent += len(self.retries.parked) + bool(self.buffer.pending)
        if self.left_unsent:
            log.info("stopping: deliveries left for the next start", extra={"fields": {
                "channel": self.channel.name, "groups": self.left_unsent}})

    async def _attempt(self, group: list[PlannedDelivery], made: int) -> None:
        self.busy = True
        try:
            await self.deliver(group, made)
        finally:
            self.busy = False

    async def deliver(self, group: list[PlannedDelivery], made: int = 0) -> None:
        """One attempt (the `made + 1`th) for a group: its outcome recorded, or the group parked for a retry."""
        wait = self.window.wait_ms(now_ms())
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait / 1000)
            if self._stopping.is_set():  # left without an outcome: the next start sends it
                self.left_unsent += 1
                return
        self.window.record(now_ms())
        attempt = made + 1
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
            self.retries.succeeded()
            log.info("delivered", extra={"fields": fields})
            await self._record(group, "delivered", attempt, result)
            return
        if result.verdict == "fail" and len(group) > 1:  # which alert of the group is refused? each alone
            log.warning("group refused; sending its alerts one by one", extra={"fields": fields})
            for delivery in group:
                await self.deliver([delivery])
            return
        if result.verdict == "fail" or attempt >= self.max_attempts:
            self.dead += 1
            log.error("delivery failed; dead-lettered", extra={"fields": fields})
            await self._record(group, "dead_lettered", attempt, result)
            return
        pause = backoff_ms(attempt, self.initial_ms, self.max_ms, self.rng(), result.retry_after_ms)
        self.retried += 1
        log.warning("delivery failed; retrying", extra={"fields": {**fields, "retry_in_ms": pause}})
        now = now_ms()
        self.retries.park(group, attempt, now + pause,
                          None if result.retry_after_ms is None else now + result.retry_after_ms)

    async def _record(self, group: list[PlannedDelivery], outcome: Outcome, attempt: int, result: Attempt) -> None:
        for delivery in self.retries.finished(group):  # the alerts' later messages, held behind this one
            self.queue.put_nowait(delivery)
        try:
            await self.on_outcome(self.channel, group, outcome, attempt, result)
        except Exception:  # the channel goes on; the unrecorded alerts are not acknowledged, so a restart resends
            log.exception("could not record a delivery outcome", extra={"fields": {
                "channel": self.channel.name, "keys": [d.key for d in group]}})
