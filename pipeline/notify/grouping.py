"""Grouping a channel's alerts: the first pending one waits `group_wait_ms`; then everything pending (up to
`max_size`) goes out as one message, and the next message waits at least `group_interval_ms` after it
(Alertmanager's group_wait / group_interval). Both 0 sends each alert at once, on its own."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class GroupBuffer(Generic[T]):
    def __init__(self, group_wait_ms: int, max_size: int = 50, group_interval_ms: int = 0) -> None:
        self.group_wait_ms = group_wait_ms
        self.group_interval_ms = group_interval_ms
        self.max_size = max_size
        self.pending: list[T] = []
        self.first_ms: int | None = None
        self.last_sent_ms: int | None = None

    def add(self, item: T, now_ms: int) -> None:
        if not self.pending:
            self.first_ms = now_ms
        self.pending.append(item)

    def due_ms(self) -> int | None:
        """When the pending group is due (None: nothing pending)."""
        if self.first_ms is None:
            return None
        due = self.first_ms + self.group_wait_ms
        if self.last_sent_ms is not None:
            due = max(due, self.last_sent_ms + self.group_interval_ms)
        return due

    def take(self, now_ms: int) -> list[T]:
        """The group to send now: empty unless it is due (or full). With group_wait 0, one item at a time."""
        due = self.due_ms()
        if due is None or (now_ms < due and len(self.pending) < self.max_size):
            return []
        size = self.max_size if self.group_wait_ms or self.group_interval_ms else 1
        group, self.pending = self.pending[:size], self.pending[size:]
        self.last_sent_ms = now_ms
        if not self.pending:  # what is left over from a full group stays due when its group was
            self.first_ms = None
        return group
