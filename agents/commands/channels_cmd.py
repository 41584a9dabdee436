"""`tailwatch channels list` (what is configured, secrets masked) and `tailwatch channels test CHANNEL` (send a
test notification now: for PagerDuty a trigger and its resolve, so no incident stays open)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime

import aiohttp

from agents.commands.common import EXIT_CHECK_FAILED, EXIT_OK, CheckFailed, UsageError, add_action
from agents.notify.config import DEFAULT_CHANNELS, Channel, load_channels
from agents.notify.senders import Attempt, make_sender
from pipeline.notify.keys import delivery_key, transition_of
from pipeline.notify.routing import PlannedDelivery
from schemas.alerts import AlertEvent, Provenance
from schemas.deliveries import DeliveryKind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_action(parser, {"list": "show the channels (secrets masked)", "test": "send a test notification to CHANNEL"})
    parser.add_argument("channel", nargs="?", help="the channel to test")
    parser.add_argument("--channels", default=str(DEFAULT_CHANNELS), help="channel file (default: the spec's)")


def test_alert(channel: str) -> AlertEvent:
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return AlertEvent(
        rule="tailwatch-test", state="firing", change="firing", severity="INFO",
        labels={"service": "tailwatch", "endpoint": "channels test", "rule": "tailwatch-test"},
        annotations={"summary": f"tailwatch test notification for channel {channel}: no action needed"},
        fingerprint=f"tailwatch-test-{uuid.uuid4().hex[:12]}", active_since=now, starts_at=now, ends_at=None,
        value=None, threshold=None, condition="channels test", channels=[channel], actions=[], runbook_url=None,
        inhibited_by=[], provenance=Provenance(window_start=now, window_end=now, sample_count=0, rules_hash="-"))


def _planned(alert: AlertEvent, channel: str, kind: DeliveryKind) -> PlannedDelivery:
    transition = transition_of(alert)
    return PlannedDelivery(delivery_key(alert.fingerprint, transition, channel), channel, kind, transition, alert)


async def send_test(channel: Channel) -> list[Attempt]:
    alert = test_alert(channel.name)
    async with aiohttp.ClientSession() as session:
        sender = make_sender(channel, session)
        results = [await sender.send([_planned(alert, channel.name, "trigger")])]
        if channel.kind == "pagerduty" and results[0].verdict == "ok":
            resolved = alert.model_copy(update={"state": "resolved", "change": "resolved", "ends_at": alert.starts_at})
            results.append(await sender.send([_planned(resolved, channel.name, "resolve")]))
    return results


def _list(channels: list[Channel]) -> int:
    for channel in channels:
        info = channel.describe()
        print(f"{info.pop('name')} ({info.pop('type')}): {info.pop('status')}")
        for key, value in info.items():
            if value is not None:
                print(f"    {key}: {value}")
    return 0


def run(args: argparse.Namespace) -> int:
    channels = load_channels(args.channels)  # an invalid file: exit 2 (agents/cli.py)
    if args.action == "list":
        return _list(channels)
    by_name = {channel.name: channel for channel in channels}
    channel = by_name.get(args.channel or "")
    if channel is None:
        raise UsageError(f"test: name one of: {', '.join(by_name)}")
    if not channel.active:
        raise CheckFailed(f"test: {channel.name} is not active: {channel.missing}")
    results = asyncio.run(send_test(channel))
    for result in results:
        print(f"{channel.name}: {'sent' if result.verdict == 'ok' else 'FAILED'} ({result.reason})")
    return EXIT_OK if all(result.verdict == "ok" for result in results) else EXIT_CHECK_FAILED
