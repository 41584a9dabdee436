"""Many alert transitions through `tailwatch notify`: the ledger it holds and the live keys of its topic stay
bounded by the open alerts (plus closed ones of the last hour of event time, plus a read offset per partition),
and a notifier killed mid-delivery and restarted neither repeats nor skips a delivery."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agents.settings import KafkaSettings
from pipeline.timestamps import iso_to_ms, ms_to_iso
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply
from tests.support import read_topic
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH, channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import keys_of, publish, settle, start

pytestmark = pytest.mark.integration

ALERTS = 30
ROUNDS = 6  # 40 minutes of event time apart: 3 h 20 min in all
ROUND_MS = 40 * 60_000
START_MS = iso_to_ms("2026-03-01T10:00:00Z")


def last_round(alert: int) -> int:
    return 1 + alert % 5  # each alert fires on even rounds and resolves on odd ones, until this round


def events(rounds: range) -> list[dict[str, object]]:
    return [alert_event(endpoint=f"/api/e{a}", channels=["slack-critical"],
                        change="firing" if r % 2 == 0 else "resolved", window_end=ms_to_iso(START_MS + r * ROUND_MS))
            for r in rounds for a in range(ALERTS) if r <= last_round(a)]


def ledger_figures(stderr: str) -> dict[str, int]:
    settled = [line for line in stderr.splitlines() if '"deliveries settled"' in line]
    return dict(orjson.loads(settled[-1])["fields"]["ledger"])


async def live_keys(settings: KafkaSettings) -> set[bytes]:
    last: dict[bytes, bool] = {}
    for message in await read_topic(settings.bootstrap or "", settings.topic("deliveries")):
        last[message.key or b""] = bool(message.value)
    return {key for key, live in last.items() if live}


async def test_many_transitions_keep_the_ledger_bounded_and_a_restart_exactly_once(kafka_settings: KafkaSettings,
                                                                                   tmp_path: Path) -> None:
    first, second = events(range(3)), events(range(3, ROUNDS))
    with HttpReceiver() as http:
        channels = channel_file(tmp_path)
        positions = await publish(kafka_settings, first)  # type: ignore[arg-type]
        notifier = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await settle(notifier, positions)
        finally:
            notifier.stop()
        assert ledger_figures(notifier.stderr)["deliveries"] == 0
        assert ledger_figures(notifier.stderr)["alerts"] == ALERTS  # all within the hour

        # The rest, with the notifier killed while a delivery is in flight, then restarted.
        http.program(SLACK_SECRET_PATH, *[Reply(delay_s=0.05)] * 10, Reply(delay_s=5.0))
        positions = await publish(kafka_settings, second)  # type: ignore[arg-type]
        notifier = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await http.wait_for_async(len(first) + 11, path=SLACK_SECRET_PATH, timeout_s=90)
            notifier.kill()
        finally:
            notifier.stop()
        restarted = start(kafka_settings, channels, channel_env(http, None), tmp_path)
        try:
            await settle(restarted, positions, timeout_s=120)
        finally:
            restarted.stop()
        held = http.requests(SLACK_SECRET_PATH)[len(first) + 10]
        delivered = keys_of(http.requests(SLACK_SECRET_PATH))
        assert len(delivered) == len(first) + len(second) == 120 and set(delivered.values()) == {1}
        assert held.headers["X-Tailwatch-Delivery-Key"] in delivered  # sent again after the restart

    # Open at the end: the alerts whose last round was a firing (2 or 4); kept closed: resolved within the hour of
    # the last round (round 5). Alerts resolved on rounds 1 and 3 are forgotten.
    still_open = {a for a in range(ALERTS) if last_round(a) % 2 == 0}
    kept_closed = {a for a in range(ALERTS) if last_round(a) == 5}
    assert len(still_open) == 12 and len(kept_closed) == 6
    figures = ledger_figures(restarted.stderr)
    assert figures["deliveries"] == 0 and figures["alerts"] == figures["router_alerts"] == 18
    live = await live_keys(kafka_settings)
    alert_keys = {key for key in live if key.startswith(b"alert/")}
    read_keys = {key for key in live if key.startswith(b"read/")}
    assert len(alert_keys) == 18 and len(read_keys) <= kafka_settings.partitions
    assert live == alert_keys | read_keys  # no delivery record is live: 120 were written, all tombstoned
