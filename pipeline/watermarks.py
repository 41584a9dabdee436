"""Event-time watermarks: a source's (max event time seen − allowed lateness), and a partition's (the least of
its running producers' stamps).

Time comes from the input only. Producers come and go: a producer that sends its final batch (end of a file, a
clean stop) leaves the partition and is forgotten at once; when the last running producer has left, the partition
is `ended` — the panes that exist then close (the caller closes them), but the future stays open: a producer that
starts later, after a gap of any length, is processed as usual, its records judged late or not by their own
stamps. A producer id that ended and sends again is simply running again.

An idle producer — a crashed ingest that never sent its final batch, or a quiet Worker's tail — would hold its
partitions back forever. So a partition also notes when each producer's last message was *published* (the Kafka
message timestamp, passed in as `seen_ms`: part of the topic's contents, so a backtest over the topic decides
exactly as the live worker did) and, with `idle_ms`, leaves out producers not heard from for that long relative
to the newest message on the partition — unless every producer is idle, which changes nothing. A record of a
producer that comes back after its panes closed is counted late, never silently dropped. A producer idle for
`forget_ms` (an hour, or `idle_ms` if longer) is forgotten, and at most `MAX_PRODUCERS` are held (the least
recently heard from go first), so the state a checkpoint keeps does not grow with restarts or crashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from pipeline.log_columns import LogColumns

DEFAULT_IDLE_PRODUCER_MS = 60_000  # a producer silent this long (in publish time) stops holding its partition
FORGET_IDLE_PRODUCER_MS = 60 * 60_000  # … and one silent this long (or idle_ms, if longer) is forgotten
MAX_PRODUCERS = 1_000  # running producers held per partition


class SourceWatermark:
    """One input's watermark; `stamp` writes it into each record as the record is read."""

    def __init__(self, lateness_ms: int) -> None:
        if lateness_ms < 0:
            raise ValueError("lateness_ms must not be negative")
        self.lateness_ms = lateness_ms
        self.max_event_ms: int | None = None

    @property
    def value(self) -> int | None:
        return None if self.max_event_ms is None else self.max_event_ms - self.lateness_ms

    def stamp(self, records: Iterable[dict[str, Any]]) -> None:
        top = self.max_event_ms
        lateness = self.lateness_ms
        for record in records:
            stamp = record["event_time_ms"]
            if top is None or stamp > top:
                top = stamp
            record["watermark_ms"] = top - lateness
        self.max_event_ms = top


    def stamp_columns(self, batch: LogColumns) -> LogColumns:
        """`stamp` for records already in columns: the batch with each record's stamp as its watermark column."""
        times = batch.event_time_ms
        if not len(times):
            return batch
        top = np.maximum.accumulate(times)
        if self.max_event_ms is not None:
            top = np.maximum(top, self.max_event_ms)
        self.max_event_ms = int(top[-1])
        return replace(batch, watermark_ms=top - self.lateness_ms)


class PartitionWatermark:
    """A partition's watermark from the stamps of the producers writing to it."""

    def __init__(self, idle_ms: int = 0) -> None:
        """`idle_ms`: leave out producers whose last message is that much older than the newest (0: never)."""
        if idle_ms < 0:
            raise ValueError("idle_ms must not be negative")
        self.idle_ms = idle_ms
        self.forget_ms = max(idle_ms, FORGET_IDLE_PRODUCER_MS) if idle_ms else 0
        self.producers: dict[str, int] = {}  # running producer → its watermark
        self.seen: dict[str, int] = {}  # running producer → publish time of its last message (ms)
        self.newest_seen_ms: int | None = None
        self.ended = False  # the last running producer left with a final batch; none has started since

    def observe(self, producer: str, watermark_ms: int | None, final: bool = False,
                seen_ms: int | None = None) -> None:
        if seen_ms is not None and seen_ms >= 0:
            self.newest_seen_ms = seen_ms if self.newest_seen_ms is None else max(self.newest_seen_ms, seen_ms)
            if not final:
                self.seen[producer] = max(self.seen.get(producer, seen_ms), seen_ms)
        if final:
            self.producers.pop(producer, None)
            self.seen.pop(producer, None)
            self._forget_idle()
            self.ended = not self.producers
            return
        if watermark_ms is not None:
            previous = self.producers.get(producer)
            if previous is None or watermark_ms > previous:
                self.producers[producer] = watermark_ms
            self.ended = False
        self._forget_idle()

    def forget(self, producer: str) -> None:
        """Stop waiting for a producer (e.g. one known to be gone for good)."""
        self.producers.pop(producer, None)
        self.seen.pop(producer, None)

    def _forget_idle(self) -> None:
        newest = self.newest_seen_ms
        if self.forget_ms and newest is not None:
            for producer in [p for p, seen in self.seen.items() if newest - seen > self.forget_ms]:
                self.forget(producer)
        while len(self.producers) > MAX_PRODUCERS:  # least recently heard from first; unheard-of before them
            self.forget(min(self.producers, key=lambda p: (self.seen.get(p, -1), self.producers[p])))

    def idle(self) -> set[str]:
        """The producers left out: not heard from for more than `idle_ms` before the newest message."""
        newest = self.newest_seen_ms
        if not self.idle_ms or newest is None:
            return set()
        return {producer for producer in self.producers
                if producer in self.seen and newest - self.seen[producer] > self.idle_ms}

    @property
    def value(self) -> int | None:
        """The watermark of the running producers (None when none is running)."""
        if not self.producers:
            return None
        idle = self.idle()
        active = [mark for producer, mark in self.producers.items() if producer not in idle]
        return min(active) if active else min(self.producers.values())

    def snapshot(self) -> dict[str, Any]:
        return {"producers": dict(self.producers), "seen": dict(self.seen), "newest_seen_ms": self.newest_seen_ms,
                "ended": self.ended}

    def restore(self, data: dict[str, Any]) -> None:
        """From `snapshot()`, or from a checkpoint written before producers could end and start again (it kept
        every finished producer's id in `finished`)."""
        self.producers = dict(data["producers"])
        self.seen = {p: t for p, t in data.get("seen", {}).items() if p in self.producers}
        self.newest_seen_ms = data.get("newest_seen_ms")
        self.ended = bool(data.get("ended", not self.producers and data.get("finished")))
