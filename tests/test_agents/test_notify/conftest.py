"""Fixtures of the notifier tests: the loopback receivers, and channel workers on the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.receivers import HttpReceiver, SmtpReceiver
from tests.test_agents.test_notify.channels import SMTP_PASSWORD, SMTP_USER
from tests.test_agents.test_notify.delivery_loop import Loop


@pytest.fixture
def http() -> AsyncIterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver  # type: ignore[misc]


@pytest.fixture
def smtp() -> AsyncIterator[SmtpReceiver]:
    with SmtpReceiver(auth={SMTP_USER: SMTP_PASSWORD}) as receiver:
        yield receiver  # type: ignore[misc]


@pytest.fixture
async def loop() -> AsyncIterator[Loop]:
    async with aiohttp.ClientSession() as session:
        runner = Loop(session)
        yield runner
        for task in runner.tasks:
            task.cancel()
