"""Channel outage (issue 7, item 3): the whole live pipeline (`tailwatch run --exit-when-done --channels`) on a
multi-incident capture while Slack #incidents answers 503 for its first requests (several seconds), then recovers.
Every alert for it arrives after the recovery, once; the other four channels get each of their transitions once,
all before the outage ends — a channel that is down delays nobody else."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.receivers import Reply, SmtpReceiver
from tests.reliability_channels_support import (
    HOOKS,
    KEY_HEADER,
    SECRET_VARS,
    SmtpClock,
    StampedHttp,
    channel_env,
    channel_file,
    channel_of,
    delivered,
    expected_deliveries,
    http_accepted,
    incident_capture,
    settled_stats,
)

pytestmark = pytest.mark.integration

OUTAGE_REPLIES = 40  # 503s before it recovers: two messages retry (the first and its probe), each ~20 times at
# 100 ms doubling to 500 ms (jittered into the upper half): at least ~4.5 s, ~6 s typically


def test_one_channel_down_then_back_nothing_lost_nothing_doubled_nobody_delayed(tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl")
    channels = channel_file(tmp_path / "channels.yaml")
    down = HOOKS["slack-critical"]
    with StampedHttp() as http, SmtpReceiver() as smtp, SmtpClock(smtp) as mail_clock:
        http.program(down, *[Reply(503, b"service unavailable")] * OUTAGE_REPLIES)
        env = {k: v for k, v in os.environ.items() if k not in (*SECRET_VARS, "TAILWATCH_KAFKA_BOOTSTRAP")}
        started = time.monotonic()
        live = subprocess.run([sys.executable, "-m", "agents.cli", "run", "--from", str(capture),
                               "--exit-when-done", "--channels", str(channels)],
                              capture_output=True, text=True, timeout=240, env=env | channel_env(http, smtp))
        took = time.monotonic() - started
        assert live.returncode == 0, live.stderr[-3000:]
        alerts = [orjson.loads(line) for line in live.stdout.splitlines()]
        replay = subprocess.run([sys.executable, "-m", "agents.cli", "replay", str(capture)],
                                capture_output=True, text=True, timeout=120, env=env)
        assert all(alert["provenance"].pop("input") is not None for alert in alerts)  # live-only provenance
        replayed = [orjson.loads(line) for line in replay.stdout.splitlines()]
        assert all(alert["provenance"].pop("input") is None for alert in replayed)
        assert alerts == replayed  # live = undisturbed replay
        expected = expected_deliveries(alerts)
        assert len(alerts) >= 20 and len(set(map(channel_of, expected))) == 5

        got = delivered(http, smtp)
        assert got == expected, (f"lost {sorted(expected - got)}, extra {sorted(got - expected)}")
        assert set(got.values()) == {1}  # none duplicated

        requests = http.requests()
        failed = [i for i, r in enumerate(requests) if r.path == down and r.reply.status == 503]
        assert len(failed) == OUTAGE_REPLIES
        # Down: the first message and its probe were retried; the others waited in the queue, untried.
        assert len({requests[i].headers[KEY_HEADER] for i in failed}) == 2
        outage_start, outage_end = http.stamps[failed[0]], http.stamps[failed[-1]]
        assert outage_end - outage_start >= 3.0  # a real outage, not a blip
        accepted = http_accepted(http)
        down_times = [http.stamps[i] for key, i in accepted if channel_of(key) == "slack-critical"]
        other_times = [http.stamps[i] for key, i in accepted if channel_of(key) != "slack-critical"]
        other_times += mail_clock.stamps
        assert len(down_times) == Counter(map(channel_of, expected))["slack-critical"]
        assert min(down_times) > outage_end  # everything for it arrived after the recovery, once
        assert max(other_times) < outage_end, "another channel waited for the one that was down"
        during = sum(outage_start <= t for t in other_times)
        assert during >= 1  # the others were delivering while it was down
        stats = settled_stats(live.stderr)["channels"]
        assert stats["slack-critical"]["retried"] == OUTAGE_REPLIES
        assert all(s["dead_lettered"] == 0 for s in stats.values())
        assert all(s["retried"] == 0 for name, s in stats.items() if name != "slack-critical")
        print(f"\nchannel outage: {len(alerts)} alerts, {sum(got.values())} deliveries "
              f"({dict(Counter(map(channel_of, got)))}), slack-critical down {outage_end - outage_start:.1f}s "
              f"({OUTAGE_REPLIES} x 503), {during} other deliveries during the outage, lost 0, duplicated 0, "
              f"run {took:.1f}s")
