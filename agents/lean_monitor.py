"""The stream worker's Faust monitor: what Faust itself reads of its `Monitor`, without per-event statistics.

Faust calls its monitor for every message in and out, every event a stream takes, every send and every table read
or write, and keeps counts and latency rings nobody reads here: tailwatch's /metrics and /health come from
`agents/worker_metrics.py`, and Faust's statistics views are off (`agents/faust_web.py`). In `bench live` those calls
were ~3 % of the worker's main thread. What Faust does read stays: when a partition's stream last took an event
(`stream_inbound_time`, for its "stream is not processing" warnings), end offsets and commits (called directly
by its consumer), rebalances.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors.monitor import Monitor
from faust.types import TP


class LeanMonitor(Monitor):
    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(self, tp: TP, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        pass

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> None:
        pass

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass
