"""The worker's Faust monitor keeps what Faust reads of it (when a partition's stream last took an event) and none of
the per-event statistics."""

from __future__ import annotations

import faust
from faust.types import TP

from agents.lean_monitor import LeanMonitor


def test_the_worker_s_monitor_keeps_only_what_faust_reads() -> None:
    app = faust.App("lean-monitor-test", broker="kafka://127.0.0.1:1", Monitor=LeanMonitor)
    monitor = app.monitor
    assert isinstance(monitor, LeanMonitor)
    tp = TP("logs", 3)
    assert tp not in monitor.stream_inbound_time
    monitor.on_stream_event_in(tp, 7, stream=object(), event=object())
    first = monitor.stream_inbound_time[tp]  # Faust's "stream is not processing" check reads it
    monitor.on_stream_event_in(tp, 8, stream=object(), event=object())
    assert monitor.stream_inbound_time[tp] >= first
    monitor.on_send_initiated(None, "metrics", None, 1, 2)
    assert monitor.events_total == 0 and monitor.messages_sent == 0  # no statistics kept per event or send
