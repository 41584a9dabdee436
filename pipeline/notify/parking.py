"""A channel's failed messages waiting for their next attempt, so one failing message does not hold back the others.

- A group that failed with a temporary error is parked until its backoff is over; the channel goes on with new
  groups meanwhile. A later message about the same alert (its resolve, say) is held until the parked one is done,
  so an alert's messages still arrive in order.
- When the channel itself looks down — two failures in a row with no success between, or a Retry-After — no new
  group is started (they would only burn their own attempts): just the parked ones are retried, each on its own
  backoff, until one succeeds. With nothing parked, a new group may always go (it is the next probe).
- Bounded: only groups that were tried are parked, and each until its last attempt; once two attempts in a row
  failed, new groups wait in the channel's queue (no attempt, no backoff) until an attempt succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Parked(Generic[T]):
    due_ms: int
    attempts: int  # made so far
    group: list[T]


class RetrySchedule(Generic[T]):
    def __init__(self, alert_of: Callable[[T], str]) -> None:
        self.alert_of = alert_of  # which alert a message is about (its messages must stay in order)
        self.parked: list[Parked[T]] = []
        self.held: list[T] = []
        self.failures_in_row = 0
        self.paused_until_ms = 0

    def park(self, group: list[T], attempts: int, due_ms: int, retry_after_until_ms: int | None = None) -> None:
        self.parked.append(Parked(due_ms, attempts, group))
        self.failures_in_row += 1
        if retry_after_until_ms is not None:  # the channel asked everyone to wait (a rate limit, maintenance)
            self.paused_until_ms = max(self.paused_until_ms, retry_after_until_ms)

    def succeeded(self) -> None:
        self.failures_in_row = 0

    def finished(self, group: list[T]) -> list[T]:
        """A group is done (sent or dead-lettered): the held messages about its alerts, to go now, in order."""
        done = {self.alert_of(item) for item in group}
        waiting = {self.alert_of(item) for parked in self.parked for item in parked.group}
        free: list[T] = []
        kept: list[T] = []
        for item in self.held:
            alert = self.alert_of(item)
            (free if alert in done and alert not in waiting else kept).append(item)
        self.held = kept
        return free

    def sendable(self, group: list[T]) -> list[T]:
        """The part of a new group that may go: messages about an alert with a parked message are held."""
        blocked = {self.alert_of(item) for parked in self.parked for item in parked.group}
        blocked |= {self.alert_of(item) for item in self.held}
        go = [item for item in group if self.alert_of(item) not in blocked]
        self.held += [item for item in group if self.alert_of(item) in blocked]
        return go

    def take_due(self, now_ms: int) -> Parked[T] | None:
        """The parked group to retry now (the one due first), if any."""
        if now_ms < self.paused_until_ms or not self.parked:
            return None
        first = min(self.parked, key=lambda parked: parked.due_ms)
        if first.due_ms > now_ms:
            return None
        self.parked.remove(first)
        return first

    def may_start(self, now_ms: int) -> bool:
        """Whether a new group may go now."""
        return now_ms >= self.paused_until_ms and (self.failures_in_row <= 1 or not self.parked)

    def next_due_ms(self) -> int | None:
        """When the next parked group is due (None: nothing parked)."""
        if not self.parked:
            return None
        return max(self.paused_until_ms, min(parked.due_ms for parked in self.parked))

    @property
    def empty(self) -> bool:
        return not self.parked and not self.held
