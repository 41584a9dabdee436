"""One failing message does not hold back the others of its channel: it waits for its retry while the channel goes
on; an alert's later messages wait behind it (order kept); a channel that is down gets no new attempts, only the
parked retries, so queued messages do not burn their attempts (real loopback receivers, no Kafka)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.receivers import HttpReceiver, Reply
from tests.test_agents.test_notify.channels import SLACK_SECRET_PATH
from tests.test_agents.test_notify.delivery_loop import Loop, channels, route

KEY_HEADER = "X-Tailwatch-Delivery-Key"


async def test_a_message_failing_again_and_again_does_not_hold_back_its_channel(
        tmp_path: Path, http: HttpReceiver, loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None, max_attempts=4)["slack-critical"])
    for _ in range(4):  # the webhook answers 500 to every message about /api/bad (say, a proxy chokes on it)
        http.program_matching(SLACK_SECRET_PATH, b"/api/bad", Reply(500, b"upstream error"))
    bad = {"endpoint": "/api/bad", "channels": ["slack-critical"]}
    planned = route(bad, *({"endpoint": f"/api/ok{i}", "channels": ["slack-critical"]} for i in range(5)),
                    {**bad, "change": "resolved", "window_end": "2026-03-01T10:30:00Z"})
    for delivery in planned:
        slack.submit(delivery)
    outcomes = await loop.wait(7)
    sent = [(r.headers[KEY_HEADER], r.reply.status) for r in http.requests(SLACK_SECRET_PATH)]
    first_ok = next(i for i, (key, status) in enumerate(sent) if status == 200)
    assert first_ok == 1 and [key for key, _ in sent[1:6]] == [d.key for d in planned[1:6]]  # right after it
    assert [status for key, status in sent if key == planned[0].key] == [500] * 4
    by_key = {o[1][0]: (o[2], o[3]) for o in outcomes}
    assert by_key[planned[0].key] == ("dead_lettered", 4)
    assert all(by_key[d.key] == ("delivered", 1) for d in planned[1:])
    # Its resolve waited until the firing message was done (dead-lettered), never overtaking it.
    assert [o[1][0] for o in outcomes].index(planned[6].key) > [o[1][0] for o in outcomes].index(planned[0].key)
    assert sent[-1][0] == planned[6].key and slack.idle


async def test_a_channel_that_is_down_gets_retries_only_not_new_attempts(tmp_path: Path, http: HttpReceiver,
                                                                          loop: Loop) -> None:
    slack = loop.worker(channels(tmp_path, http, None, max_attempts=40)["slack-critical"])
    http.program(SLACK_SECRET_PATH, *[Reply(503, b"down")] * 12)
    planned = route(*({"endpoint": f"/api/e{i}", "channels": ["slack-critical"]} for i in range(6)))
    started = time.monotonic()
    for delivery in planned:
        slack.submit(delivery)
    outcomes = await loop.wait(6, timeout_s=30)
    requests = http.requests(SLACK_SECRET_PATH)
    failed = {r.headers[KEY_HEADER] for r in requests if r.reply.status == 503}
    assert len([r for r in requests if r.reply.status == 503]) == 12
    assert failed == {planned[0].key, planned[1].key}  # the first and its probe; the others waited, untried
    assert sorted(o[2] for o in outcomes) == ["delivered"] * 6
    assert all(o[3] == 1 for o in outcomes if o[1][0] not in failed)
    assert slack.retried == 12 and slack.dead == 0 and time.monotonic() - started < 30
