"""The stream worker's stall watchdog decides on a real (unstarted) worker's Faust state: a table recovery that
receives nothing, or owned partitions behind their high watermark with no message applied, for `stall_s`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from agents.settings import KafkaSettings
from agents.stall_watchdog import StallWatchdog
from agents.stream_worker import MetricsWorker
from agents.worker_state import WorkerSettings


def worker_and_lags() -> tuple[MetricsWorker, dict[int, int]]:
    worker = MetricsWorker(WorkerSettings(KafkaSettings("127.0.0.1:9", "wd", 4, 1)))
    return worker, {0: 0, 1: 0}


def test_a_partition_behind_with_nothing_applied_for_stall_s_is_a_delivery_stall() -> None:
    worker, lags = worker_and_lags()
    dog = StallWatchdog(worker, stall_s=30.0, lag=lambda _worker: lags)
    state: Any = SimpleNamespace(operator=SimpleNamespace(applied_offset=5))
    worker.partitions[1] = state
    assert dog.stall_kind(100.0) is None  # caught up
    lags[1] = 3
    assert dog.stall_kind(110.0) is None  # behind, but the last progress (seen at 100) is 10 s old
    assert dog.stall_kind(130.0) == ("delivery", [1])
    state.operator.applied_offset = 6  # a message applied: progress
    assert dog.stall_kind(131.0) is None
    assert dog.stall_kind(150.0) is None
    assert dog.stall_kind(161.0) == ("delivery", [1])
    worker.app.rebalancing = True  # a rebalance in progress is not a stall
    assert dog.stall_kind(170.0) is None
    worker.app.rebalancing = False
    lags[1] = 0
    assert dog.stall_kind(200.0) is None  # caught up again


def test_a_recovery_that_receives_nothing_for_stall_s_is_a_recovery_stall() -> None:
    worker, lags = worker_and_lags()
    dog = StallWatchdog(worker, stall_s=30.0, lag=lambda _worker: lags)
    recovery: Any = worker.app.tables.recovery  # type: ignore[attr-defined]
    changelog = TP("wd-metrics-panes-changelog", 2)
    recovery.in_recovery = True
    recovery._recovery_started_at = 100.0
    recovery.active_highwaters[changelog] = 22
    recovery.active_offsets[changelog] = -1
    assert dog.stall_kind(120.0) is None
    recovery._active_events_received_at[changelog] = 125.0  # an event arrived: the clock restarts
    assert dog.stall_kind(140.0) is None
    assert dog.stall_kind(156.0) == ("recovery", [])
    recovery.active_offsets[changelog] = 22  # nothing left to read: not a stall, whatever the clock says
    assert dog.stall_kind(300.0) is None
