"""The channel loop on its own, for delivery tests: channels pointing at the loopback receivers, channel workers
with an outcome log (as the notifier runs them), and planned deliveries routed from sample alerts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from agents.notify.config import Channel, load_channels
from agents.notify.delivery import ChannelWorker, Outcome
from agents.notify.senders import Attempt, make_sender
from pipeline.notify.routing import PlannedDelivery, Router
from tests.alert_samples import alert
from tests.receivers import HttpReceiver, SmtpReceiver
from tests.test_agents.test_notify.channels import channel_env, channel_file

Outcomes = list[tuple[str, list[str], Outcome, int, Attempt]]


def channels(tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver | None, **kwargs: object) -> dict[str, Channel]:
    loaded = load_channels(channel_file(tmp_path, **kwargs), env=channel_env(http, smtp))  # type: ignore[arg-type]
    return {channel.name: channel for channel in loaded}


class Loop:
    """Channel workers with an outcome log, as the notifier runs them."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.outcomes: Outcomes = []
        self.tasks: list[asyncio.Task[None]] = []

    async def on_outcome(self, channel: Channel, group: list[PlannedDelivery], outcome: Outcome, attempts: int,
                         result: Attempt) -> None:
        self.outcomes.append((channel.name, [d.key for d in group], outcome, attempts, result))

    def worker(self, channel: Channel) -> ChannelWorker:
        worker = ChannelWorker(channel, make_sender(channel, self.session), self.on_outcome, rng=lambda: 0.5)
        self.tasks.append(asyncio.get_running_loop().create_task(worker.run()))
        return worker

    async def wait(self, count: int, timeout_s: float = 20) -> Outcomes:
        deadline = time.monotonic() + timeout_s
        while len(self.outcomes) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(self.outcomes) >= count, self.outcomes
        return self.outcomes


def route(*events: dict[str, object], active: tuple[str, ...] = ("pagerduty", "slack-critical", "email")) \
        -> list[PlannedDelivery]:
    router = Router(dict.fromkeys(active, True))
    return [d for event in events for d in router.route(alert(**event)).deliveries]  # type: ignore[arg-type]
