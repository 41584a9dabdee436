"""`tailwatch notify` on the embedded broker with a poisoned alert first (an endpoint with CR/LF and a Slack
mention, a Slack webhook that refuses its message, an SMTP server that rejects its e-mail): it is dead-lettered on
`<prefix>.notify.deadletter` after one attempt per channel, with its reason and the alert; the alerts after it
arrive on every channel, each once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.settings import KafkaSettings
from schemas.deliveries import NotificationDeadLetter
from tests.alert_samples import alert_event
from tests.receivers import HttpReceiver, Reply, SmtpReceiver, SmtpReply
from tests.support import ledger_deliveries, read_topic
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH, channel_env, channel_file
from tests.test_agents.test_notify.test_notifier import publish, settle, start

pytestmark = pytest.mark.integration
HOSTILE = "/api/<!channel>/<b>&amp;\r\nBcc: x@evil.test"
CHANNELS = ["pagerduty", "slack-critical", "email"]


async def test_a_poisoned_alert_is_dead_lettered_with_its_reason_and_the_next_ones_go(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    poisoned = alert_event(endpoint=HOSTILE, channels=CHANNELS, fingerprint="fp-poisoned")
    normal = [alert_event(endpoint=f"/api/ok{i}", channels=CHANNELS) for i in range(3)]
    positions = await publish(kafka_settings, [poisoned, *normal])
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        http.program_matching(SLACK_SECRET_PATH, b"x@evil.test", Reply(400, b"invalid_attachments"))
        smtp.program_matching(b"x@evil.test", SmtpReply(554, "5.7.1 message rejected"))
        channels = channel_file(tmp_path, max_attempts=10)
        env = channel_env(http, smtp) | {"SMTP_USER": "", "SMTP_PASSWORD": ""}
        notifier = start(kafka_settings, channels, env, tmp_path)
        try:
            await settle(notifier, positions)
        finally:
            notifier.stop()
        bootstrap = kafka_settings.bootstrap or ""
        letters = [NotificationDeadLetter.model_validate(m.value)
                   for m in await read_topic(bootstrap, kafka_settings.topic("notify.deadletter"))]
        ledger = await ledger_deliveries(kafka_settings)
    slack = next(letter for letter in letters if letter.channel == "slack-critical")
    assert (slack.key, slack.attempts, slack.last_status, slack.reason) == (
        "fp-poisoned/firing@2026-03-01T10:10:00Z/slack-critical", 1, 400, "HTTP 400: invalid_attachments")
    assert slack.alert is not None and slack.alert["labels"]["endpoint"] == HOSTILE  # the alert, to re-drive
    [mail] = [letter for letter in letters if letter.channel == "email"]
    assert (mail.key, mail.attempts, mail.last_status, mail.reason) == (
        "fp-poisoned/firing@2026-03-01T10:10:00Z/email", 1, 554, "SMTP 554: 5.7.1 message rejected")
    assert len(letters) == 2  # PagerDuty took the poisoned alert: its summary is one line
    dead = {slack.key, mail.key}
    assert {r.key for r in ledger if r.outcome == "dead_lettered"} == dead
    delivered = [r.key for r in ledger if r.outcome == "delivered"]
    assert len(delivered) == len(set(delivered)) == 4 * 3 - 2
    pagerduty = [r.json() for r in http.requests("/v2/enqueue")]
    assert any(p["payload"]["summary"].endswith("\\r\\nBcc: x@evil.test: error rate 12.5% > 5% for 10 minutes")
               for p in pagerduty)
    assert len(smtp.messages()) == 3 and smtp.attempts == 4  # the rejected one was not retried
    assert len(http.requests(SLACK_SECRET_PATH)) == 4
