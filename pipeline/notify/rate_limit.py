"""A per-channel rate limit: at most `max_sends` messages in any window of `per_ms` (a sliding log)."""

from __future__ import annotations

from collections import deque


class SendWindow:
    def __init__(self, max_sends: int, per_ms: int) -> None:
        if max_sends < 1 or per_ms < 1:
            raise ValueError("a rate limit needs max_sends >= 1 and per_ms >= 1")
        self.max_sends = max_sends
        self.per_ms = per_ms
        self.sent: deque[int] = deque()

    def wait_ms(self, now_ms: int) -> int:
        """How long to wait before the next send is allowed (0: now)."""
        while self.sent and self.sent[0] <= now_ms - self.per_ms:
            self.sent.popleft()
        if len(self.sent) < self.max_sends:
            return 0
        return self.sent[0] + self.per_ms - now_ms

    def record(self, now_ms: int) -> None:
        self.sent.append(now_ms)
