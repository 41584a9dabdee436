"""Real deliveries to loopback servers: what arrives at PagerDuty, Slack and SMTP, retries with Retry-After,
the rate limit, dead letters, and channel isolation (no Kafka here: the channel loop on its own)."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

from agents.notify.config import Channel
from agents.notify.senders import KEY_HEADER
from pipeline.notify.mail import message_id
from pipeline.notify.routing import PlannedDelivery
from tests.receivers import HttpReceiver, Reply, SmtpReceiver, SmtpReply
from tests.test_agents.test_notify.channels import (
    PD_KEY,
    SECRETS,
    SLACK_SECRET_PATH,
    SMTP_USER,
)
from tests.test_agents.test_notify.delivery_loop import Loop, channels, route


async def test_pagerduty_trigger_then_resolve_with_the_same_dedup_key(tmp_path: Path, http: HttpReceiver,
                                                                      loop: Loop) -> None:
    pd = loop.worker(channels(tmp_path, http, None)["pagerduty"])
    http.program("/v2/enqueue", Reply(202, b'{"status":"success"}'), Reply(202, b'{"status":"success"}'))
    planned = route({"channels": ["pagerduty"]}, {"change": "resolved", "window_end": "2026-03-01T10:30:00Z"},
                    active=("pagerduty",))
    for delivery in planned:
        pd.submit(delivery)
    await loop.wait(2)
    trigger, resolve = [r.json() for r in http.requests("/v2/enqueue")]
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == planned[0].alert.fingerprint
    assert trigger["routing_key"] == resolve["routing_key"] == PD_KEY
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["custom_details"]["runbook"] == "https://runbooks.example.com/factory/high-error-rate"
    headers = http.requests("/v2/enqueue")[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers[KEY_HEADER] == planned[0].key
    assert [o[2] for o in loop.outcomes] == ["delivered", "delivered"]


async def test_slack_webhook_is_used_as_given_and_carries_the_message(tmp_path: Path, http: HttpReceiver,
                                                                      loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None)["slack-critical"])
    [delivery] = route({"channels": ["slack-critical"]})
    slack.submit(delivery)
    await loop.wait(1)
    [request] = http.requests(SLACK_SECRET_PATH)
    assert request.method == "POST" and request.headers[KEY_HEADER] == delivery.key
    body = request.json()
    assert body["text"] == "<!here> [FIRING] CRITICAL factory-high-error-rate: gateway /api/public/factory/templates"
    assert body["channel"] == "#incidents"
    assert body["attachments"][0]["color"] == "#A32037"


async def test_email_goes_once_to_every_recipient_as_text_and_html(tmp_path: Path, http: HttpReceiver,
                                                                   smtp: SmtpReceiver, loop: Loop) -> None:
    email = loop.worker(channels(tmp_path, http, smtp)["email"])
    [delivery] = route({"channels": ["email"], "severity": "HIGH"})
    email.submit(delivery)
    await loop.wait(1)
    [mail] = await smtp.wait_for_async(1)
    assert mail.login == SMTP_USER
    assert sorted(mail.rcpt_tos) == ["lead@example.test", "oncall@example.test"]
    assert mail.mail_from == "tailwatch@example.test"
    assert mail.message["Subject"] == (
        "[tailwatch] [FIRING] HIGH factory-high-error-rate: gateway /api/public/factory/templates")
    assert mail.message[KEY_HEADER] == delivery.key
    assert "Value: 0.125 vs threshold 0.05 (error_rate > 0.05)" in mail.part("text/plain")
    assert "<table>" in mail.part("text/html")


async def test_500_then_429_retry_after_then_recovery_delivers_each_alert_once(
        tmp_path: Path, http: HttpReceiver, loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None)["slack-critical"])
    http.program(SLACK_SECRET_PATH, Reply(500, b"oops"), Reply(429, b"rate_limited", {"Retry-After": "1"}))
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["slack-critical"]} for i in range(3)))
    started = time.monotonic()
    for delivery in planned:
        slack.submit(delivery)
    outcomes = await loop.wait(3)
    elapsed = time.monotonic() - started
    requests = http.requests(SLACK_SECRET_PATH)
    # e0 fails (500) and waits for its retry; e1 goes meanwhile and is told to wait 1 s (429): the whole channel
    # waits, then e0 and e1 are retried, then e2 goes.
    assert [(r.reply.status, r.headers[KEY_HEADER]) for r in requests] == [
        (500, planned[0].key), (429, planned[1].key), (200, planned[0].key), (200, planned[1].key),
        (200, planned[2].key)]
    assert [(o[1], o[2], o[3]) for o in outcomes] == [
        ([planned[0].key], "delivered", 2), ([planned[1].key], "delivered", 2), ([planned[2].key], "delivered", 1)]
    assert elapsed >= 1.0, "Retry-After: 1 was not honoured"
    assert requests[2].headers[KEY_HEADER] and slack.idle


async def test_a_failing_channel_never_blocks_another(tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver,
                                                      loop: Loop) -> None:
    chans = channels(tmp_path, http, smtp)
    http.program("/v2/enqueue", *[Reply(503, b"down", delay_s=0.5)] * 5)  # PagerDuty is down for a while
    pd, email = loop.worker(chans["pagerduty"]), loop.worker(chans["email"])
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["pagerduty", "email"]} for i in range(3)))
    for delivery in planned:
        (pd if delivery.channel == "pagerduty" else email).submit(delivery)
    await smtp.wait_for_async(3, timeout_s=3.0)  # all e-mails went while PagerDuty kept failing on its first alert
    assert len(http.requests("/v2/enqueue")) <= 4
    await loop.wait(6, timeout_s=30)
    assert sorted(o[2] for o in loop.outcomes) == ["delivered"] * 6


async def test_permanent_errors_and_exhausted_retries_are_dead_lettered_without_secrets(
        tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver, loop: Loop) -> None:
    chans = channels(tmp_path, http, smtp, max_attempts=3)
    # Slack answers 404 with the URL in its body; the SMTP server keeps deferring; PagerDuty is unreachable.
    http.program(SLACK_SECRET_PATH, Reply(404, f"no_service for {http.url(SLACK_SECRET_PATH)}".encode()))
    smtp.program(*[SmtpReply(451, "try again later")] * 3)
    unreachable = Channel(chans["pagerduty"].name, chans["pagerduty"].spec, secret=PD_KEY,
                          events_url=f"http://127.0.0.1:1/{PD_KEY}/enqueue")
    slack, email, pd = loop.worker(chans["slack-critical"]), loop.worker(chans["email"]), loop.worker(unreachable)
    for delivery in route({"channels": ["slack-critical", "email", "pagerduty"]}):
        {"slack-critical": slack, "email": email, "pagerduty": pd}[delivery.channel].submit(delivery)
    outcomes = {o[0]: o for o in await loop.wait(3)}
    assert outcomes["slack-critical"][2:4] == ("dead_lettered", 1)  # 404 will not get better: no retry
    assert outcomes["email"][2:4] == ("dead_lettered", 3)
    assert outcomes["pagerduty"][2:4] == ("dead_lettered", 3)
    assert outcomes["email"][4].status == 451
    reasons = " ".join(o[4].reason for o in outcomes.values())
    assert "HTTP 404" in reasons and "SMTP 451" in reasons and "connection failed" in reasons
    for secret in SECRETS:
        assert secret not in reasons


async def test_rate_limit_spaces_a_channels_messages(tmp_path: Path, http: HttpReceiver, loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None, slack_rate="2")["slack-critical"])
    started = time.monotonic()
    for delivery in route(*({"endpoint": f"/api/e{i}", "channels": ["slack-critical"]} for i in range(5))):
        slack.submit(delivery)
    await loop.wait(5)
    assert time.monotonic() - started >= 2.0  # 2 per second: the 5th goes at t >= 2 s


async def test_group_wait_collects_a_channels_alerts_into_one_message(tmp_path: Path, http: HttpReceiver,
                                                                      smtp: SmtpReceiver, loop: Loop) -> None:
    chans = channels(tmp_path, http, smtp, group_wait="1s")
    slack, email, pd = (loop.worker(chans[n]) for n in ("slack-critical", "email", "pagerduty"))
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["slack-critical", "email", "pagerduty"]}
                      for i in range(3)))
    for delivery in planned:
        {"slack-critical": slack, "email": email, "pagerduty": pd}[delivery.channel].submit(delivery)
    await loop.wait(5)
    [message] = http.requests(SLACK_SECRET_PATH)
    assert len(message.json()["attachments"]) == 3
    [mail] = await smtp.wait_for_async(1)
    assert mail.message["Subject"] == "[tailwatch] 3 alerts: 3 firing, 0 resolved"
    assert len(http.requests("/v2/enqueue")) == 3  # PagerDuty never groups: one incident per alert


async def test_a_stopped_channel_finishes_the_send_in_flight_and_takes_no_more(tmp_path: Path, http: HttpReceiver,
                                                                              loop: Loop) -> None:
    pd = loop.worker(channels(tmp_path, http, None)["pagerduty"])
    http.program("/v2/enqueue", Reply(202, b'{"status":"success"}', delay_s=1.0))
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["pagerduty"]} for i in range(2)), active=("pagerduty",))
    for delivery in planned:
        pd.submit(delivery)
    await http.wait_for_async(1, "/v2/enqueue")  # the first alert is in flight
    pd.stop()
    await asyncio.wait_for(loop.tasks[-1], timeout=10)  # the channel's loop ended by itself
    assert [(o[1], o[2]) for o in loop.outcomes] == [([planned[0].key], "delivered")]  # answered, then recorded
    assert len(http.requests("/v2/enqueue")) == 1  # the second was not sent: it stays unacknowledged
    assert not pd.busy


async def test_a_stopped_channel_leaves_a_retry_without_an_outcome(tmp_path: Path, http: HttpReceiver,
                                                                  loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None)["slack-critical"])
    http.program(SLACK_SECRET_PATH, Reply(429, b"rate_limited", {"Retry-After": "60"}))
    [delivery] = route({"channels": ["slack-critical"]})
    slack.submit(delivery)
    await http.wait_for_async(1, SLACK_SECRET_PATH)
    while not slack.retried:  # waiting the 60 s Retry-After
        await asyncio.sleep(0.01)
    started = time.monotonic()
    slack.stop()
    await asyncio.wait_for(loop.tasks[-1], timeout=5)
    assert time.monotonic() - started < 1.0  # the stop cut the wait short
    assert loop.outcomes == []  # neither delivered nor dead-lettered: the next start sends it
    assert slack.left_unsent == 1 and slack.dead == 0


HOSTILE = "/api/<!channel>/<b>&amp;\r\nBcc: x@evil.test `rm -rf` @here ü日本"


async def test_hostile_labels_arrive_escaped_one_line_and_the_email_is_dated(
        tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver, loop: Loop) -> None:
    chans = channels(tmp_path, http, smtp)
    workers = {name: loop.worker(chans[name]) for name in ("pagerduty", "slack-critical", "email")}
    planned = route({"endpoint": HOSTILE, "channels": list(workers), "fingerprint": "fp-hostile"})
    for delivery in planned:
        workers[delivery.channel].submit(delivery)
    before = int(time.time())
    outcomes = await loop.wait(3)
    assert [o[2] for o in outcomes] == ["delivered"] * 3, outcomes  # no ValueError, no retry
    shown = "gateway /api/&lt;!channel&gt;/&lt;b&gt;&amp;amp;\\r\\nBcc: x@evil.test `rm -rf` @here ü日本"
    [slack] = [r.json() for r in http.requests(SLACK_SECRET_PATH)]
    assert slack["text"] == f"<!here> [FIRING] CRITICAL factory-high-error-rate: {shown}"
    assert slack["attachments"][0]["fields"][0] == {"title": "Endpoint", "value": shown, "short": True}
    assert str(slack).count("<!") == 1  # the configured mention only
    [pd] = [r.json() for r in http.requests("/v2/enqueue")]
    assert pd["payload"]["summary"] == ("[CRITICAL] gateway /api/<!channel>/<b>&amp;\\r\\nBcc: x@evil.test "
                                        "`rm -rf` @here ü日本: error rate 12.5% > 5% for 10 minutes")
    assert pd["payload"]["custom_details"]["labels"]["endpoint"] == HOSTILE
    [mail] = await smtp.wait_for_async(1)
    message = mail.message
    assert message["Subject"] == ("[tailwatch] [FIRING] CRITICAL factory-high-error-rate: gateway /api/<!channel>/"
                                  "<b>&amp;\\r\\nBcc: x@evil.test `rm -rf` @here ü日本")
    assert message["Bcc"] is None and sorted(mail.rcpt_tos) == ["lead@example.test", "oncall@example.test"]
    assert before - 1 <= parsedate_to_datetime(message["Date"]).timestamp() <= time.time() + 1
    email_key = next(d.key for d in planned if d.channel == "email")
    assert message["Message-ID"] == message_id([email_key], "tailwatch@example.test")
    assert "Endpoint: gateway /api/<!channel>/<b>&amp;\\r\\nBcc: x@evil.test" in mail.part("text/plain")


async def test_long_and_non_ascii_endpoints_are_delivered(tmp_path: Path, http: HttpReceiver,
                                                          smtp: SmtpReceiver, loop: Loop) -> None:
    endpoint = "/api/" + "é" * 4000 + "/end"
    chans = channels(tmp_path, http, smtp)
    workers = {name: loop.worker(chans[name]) for name in ("pagerduty", "slack-critical", "email")}
    for delivery in route({"endpoint": endpoint, "channels": list(workers), "fingerprint": "fp-long"}):
        workers[delivery.channel].submit(delivery)
    assert [o[2] for o in await loop.wait(3)] == ["delivered"] * 3
    [pd] = [r.json() for r in http.requests("/v2/enqueue")]
    summary = pd["payload"]["summary"]  # the annotation holds the endpoint too: too long, rebuilt
    assert len(summary) == 1024 and summary.startswith("[CRITICAL] factory-high-error-rate on gateway /api/éé")
    assert summary.endswith("éé/end: 0.125 vs threshold 0.05 (error_rate > 0.05)")
    [mail] = await smtp.wait_for_async(1)
    assert mail.message["Subject"].endswith("éé/end") and len(mail.message["Subject"]) <= 250
    assert endpoint in mail.part("text/plain")
    [slack] = [r.json() for r in http.requests(SLACK_SECRET_PATH)]
    assert slack["attachments"][0]["fields"][0]["value"] == f"gateway {endpoint}"


async def test_a_delivery_that_can_never_succeed_is_dead_lettered_at_once_and_holds_back_nothing(
        tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver, loop: Loop) -> None:
    chans = channels(tmp_path, http, smtp, max_attempts=10)
    http.program(SLACK_SECRET_PATH, Reply(400, b"invalid_blocks"))  # refuses the first message, for good
    smtp.program(SmtpReply(554, "5.6.0 message content rejected"))
    slack, email, pd = (loop.worker(chans[n]) for n in ("slack-critical", "email", "pagerduty"))
    [broken] = route({"channels": ["pagerduty"], "fingerprint": "fp-broken"}, active=("pagerduty",))
    # A payload that cannot be built (a label that is not text): a permanent failure, not ten retries.
    pd.submit(PlannedDelivery(broken.key, broken.channel, broken.kind, broken.transition,
                              broken.alert.model_copy(update={"labels": {"endpoint": 7}})))
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["slack-critical", "email", "pagerduty"]}
                      for i in range(3)))
    for delivery in planned:
        {"slack-critical": slack, "email": email, "pagerduty": pd}[delivery.channel].submit(delivery)
    outcomes = await loop.wait(10)
    dead = {o[0]: o for o in outcomes if o[2] == "dead_lettered"}
    assert sorted(dead) == ["email", "pagerduty", "slack-critical"]
    assert all(o[3] == 1 for o in dead.values())  # one attempt each
    assert dead["slack-critical"][4].reason == "HTTP 400: invalid_blocks"
    assert dead["email"][4].reason == "SMTP 554: 5.6.0 message content rejected"
    assert dead["pagerduty"][4].reason.startswith("cannot build the message: TypeError")
    assert dead["pagerduty"][1] == [broken.key] and len(http.requests("/v2/enqueue")) == 3
    delivered = sorted(key for o in outcomes if o[2] == "delivered" for key in o[1])
    assert len(delivered) == 7 and all(d.key in delivered for d in planned if d.key not in
                                       (dead["slack-critical"][1][0], dead["email"][1][0]))


async def test_a_refused_group_is_sent_again_alert_by_alert(tmp_path: Path, http: HttpReceiver,
                                                            loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None, group_wait="500ms")["slack-critical"])
    http.program(SLACK_SECRET_PATH, Reply(400, b"invalid_payload"), Reply(400, b"invalid_payload"))
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["slack-critical"]} for i in range(3)))
    for delivery in planned:
        slack.submit(delivery)
    outcomes = await loop.wait(3)
    requests = http.requests(SLACK_SECRET_PATH)
    assert [len(r.json()["attachments"]) for r in requests] == [3, 1, 1, 1]
    assert [(o[1], o[2]) for o in outcomes] == [([planned[0].key], "dead_lettered"),
                                                ([planned[1].key], "delivered"), ([planned[2].key], "delivered")]
