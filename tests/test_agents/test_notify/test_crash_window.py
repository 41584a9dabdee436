"""The one window effectively-once leaves open (README, docs/architecture.md): a channel has a message, the
notifier dies before the ledger records it. Tested for real: each receiver keeps the message and holds its answer,
the test SIGKILLs the notifier once all three have theirs, then restarts it. PagerDuty gets the trigger again with
the same `dedup_key` (it de-duplicates), Slack and e-mail get exactly one duplicate (the e-mail with the same
Message-ID), and nothing recorded before the crash is sent again."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from agents.settings import KafkaSettings
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply, SmtpReceiver, SmtpReply
from tests.support import ledger_deliveries, read_topic
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH, channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import publish, settle, start

pytestmark = pytest.mark.integration
KEY_HEADER = "X-Tailwatch-Delivery-Key"


async def test_sigkill_after_the_channels_accepted_before_the_ledger_record(kafka_settings: KafkaSettings,
                                                                            tmp_path: Path) -> None:
    before = alert_event(endpoint="/api/before", channels=["slack-critical"], severity="HIGH")
    crash = alert_event(endpoint="/api/crash", channels=["pagerduty", "slack-critical", "email"])
    positions = await publish(kafka_settings, [before])
    release = threading.Event()
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        # `before` is answered and recorded first; then each channel keeps `crash` and holds its answer.
        http.program_matching(SLACK_SECRET_PATH, b"/api/crash", Reply(200, hold=release))
        http.program("/v2/enqueue", Reply(202, hold=release))
        smtp.program(SmtpReply(250, "queued", hold=release))
        channels = channel_file(tmp_path)
        env = channel_env(http, smtp) | {"SMTP_USER": "", "SMTP_PASSWORD": ""}
        notifier = start(kafka_settings, channels, env, tmp_path)
        try:
            await read_topic(kafka_settings.bootstrap or "", kafka_settings.topic("deliveries"), until=1,
                             timeout_s=90)
            for partition, offset in (await publish(kafka_settings, [crash])).items():
                positions[partition] = max(offset, positions.get(partition, 0))
            await http.wait_for_async(2, path=SLACK_SECRET_PATH, timeout_s=90)
            await http.wait_for_async(1, path="/v2/enqueue", timeout_s=30)
            await smtp.wait_for_async(1, timeout_s=30)
            notifier.kill()  # every channel has `crash`; the notifier waited for their answers: no ledger record
        finally:
            release.set()
            notifier.stop()
        crash_keys = {f"{crash['fingerprint']}/firing@{crash['provenance']['window_end']}/{channel}"
                      for channel in crash["channels"]}
        ledger = await ledger_deliveries(kafka_settings)
        assert [r.key for r in ledger] == [f"{before['fingerprint']}/firing@2026-03-01T10:10:00Z/slack-critical"]
        assert not crash_keys & {r.key for r in ledger}  # the crash came before any record of `crash`

        restarted = start(kafka_settings, channels, env, tmp_path)
        try:
            await settle(restarted, positions, timeout_s=120)
        finally:
            restarted.stop()
        pagerduty = [r.json() for r in http.requests("/v2/enqueue")]
        assert [(p["event_action"], p["dedup_key"]) for p in pagerduty] == [("trigger", crash["fingerprint"])] * 2
        slack = Counter(r.headers[KEY_HEADER] for r in http.requests(SLACK_SECRET_PATH))
        assert sorted(slack.values()) == [1, 2]  # `before` once, `crash` twice: one duplicate
        mails = smtp.messages()
        assert len(mails) == 2 and mails[0].message["Message-ID"] == mails[1].message["Message-ID"]
        ledger = await ledger_deliveries(kafka_settings)
        assert Counter(r.key for r in ledger) == Counter({r.key: 1 for r in ledger})
        assert crash_keys <= {r.key for r in ledger} and {r.outcome for r in ledger} == {"delivered"}
