"""A watchdog for a stream worker that stops making progress inside Faust (seen under load around rebalances:
a table recovery that receives no changelog event, or assigned partitions with messages behind them that are
never delivered).

Every `check_every_s` it looks for either stall lasting `stall_s`:
- **recovery**: Faust is recovering the table and no changelog event arrived for `stall_s`;
- **delivery**: not rebalancing, and a logs partition the worker owns has messages past the last one it applied
  (the high watermark from the consumer's last fetch) while nothing was applied for `stall_s`.

Then it logs `worker stalled` (kind, partitions, and the consumer's flow state) plus what every asyncio task is
waiting on, and nudges Faust: resumes the partitions and the flow, and restarts the fetcher when its task ended.
If the stall outlasts `exit_after_s` more, the process exits (code 70) so its supervisor starts a fresh one: a
restarted worker resumes from its checkpoints and loses nothing (see agents/stream_worker.py).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.stream_worker import MetricsWorker

log = logging.getLogger("tailwatch.worker")

EXIT_CODE = 70  # EX_SOFTWARE


def task_stacks(app: Any) -> list[dict[str, str]]:
    """Where every asyncio task of a Faust app waits (its own loop and the Kafka consumer thread's)."""
    loops = [asyncio.get_running_loop()]
    thread_loop = getattr(getattr(app.consumer, "_thread", None), "thread_loop", None)
    if thread_loop is not None:
        loops.append(thread_loop)
    stacks = []
    for loop in loops:
        for task in asyncio.all_tasks(loop):
            out = io.StringIO()
            task.print_stack(limit=20, file=out)
            stacks.append({"task": task.get_name(), "stack": out.getvalue()[-3000:]})
    return stacks


@dataclass
class StallWatchdog:
    worker: MetricsWorker
    stall_s: float = 30.0
    exit_after_s: float = 60.0
    stalled_since: float | None = None
    last_progress: float = 0.0
    last_applied: int = -1
    lag: Callable[[MetricsWorker], dict[int, int]] | None = None  # default: agents.worker_metrics.consumer_lag

    def _flow_state(self) -> dict[str, Any]:
        app: Any = self.worker.app
        consumer = app.consumer
        fetcher = app._fetcher
        drainer = getattr(fetcher, "_drainer", None)
        return {
            "flow_active": getattr(consumer, "flow_active", None),
            "paused": sorted(f"{tp.topic}/{tp.partition}" for tp in getattr(consumer, "_paused_partitions", ())),
            "fetcher": str(getattr(fetcher, "state", "?")),
            "fetcher_task_done": None if drainer is None else drainer.done(),
            "in_recovery": app.tables.recovery.in_recovery,
            "rebalancing": app.rebalancing,
        }

    def stall_kind(self, now: float) -> tuple[str, list[int]] | None:
        """What is stalled now (and which logs partitions), or None."""
        from agents.worker_metrics import consumer_lag  # noqa: PLC0415 - Faust is loaded by now

        lag_of = self.lag or consumer_lag
        worker = self.worker
        app: Any = worker.app
        recovery = app.tables.recovery
        applied = sum(state.operator.applied_offset for state in worker.partitions.values())
        if applied != self.last_applied:
            self.last_applied, self.last_progress = applied, now
        if recovery.in_recovery:
            started = recovery._recovery_started_at or now
            received = max(recovery._active_events_received_at.values(), default=started)
            if now - max(started, received) >= self.stall_s and recovery.active_remaining_total() > 0:
                return "recovery", []
            return None
        if app.rebalancing:
            return None
        behind = sorted(partition for partition, lag in lag_of(worker).items() if lag > 0)
        if behind and now - self.last_progress >= self.stall_s:
            return "delivery", behind
        return None

    async def nudge(self) -> None:
        app: Any = self.worker.app
        consumer = app.consumer
        consumer.resume_partitions(set(consumer.assignment()))
        app.flow_control.resume()
        consumer.resume_flow()
        fetcher = app._fetcher
        drainer = getattr(fetcher, "_drainer", None)
        if fetcher.should_stop or (drainer is not None and drainer.done()):
            fetcher.service_reset()
            await fetcher.maybe_start()

    async def check(self) -> None:
        now = time.monotonic()
        try:
            stall = self.stall_kind(now)
        except Exception as error:  # starting or stopping: Faust's parts may not all be there
            log.debug("watchdog check skipped", extra={"fields": {"error": repr(error)}})
            return
        if stall is None:
            self.stalled_since = None
            return
        kind, partitions = stall
        if self.stalled_since is None:
            self.stalled_since = now
            log.warning("worker stalled", extra={"fields": {"kind": kind, "partitions": partitions,
                                                            "stall_s": self.stall_s, **self._flow_state(),
                                                            "tasks": task_stacks(self.worker.app)}})
            await self.nudge()
        elif now - self.stalled_since >= self.exit_after_s:
            log.error("worker still stalled: exiting so that a fresh process takes over",
                      extra={"fields": {"kind": kind, "partitions": partitions, **self._flow_state()}})
            logging.shutdown()
            os._exit(EXIT_CODE)
