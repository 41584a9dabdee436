"""Crashes with deliveries (issue 7, item 1, the channel part), on Apache Kafka: while a multi-incident capture
flows through the live pipeline (ingest → stream worker → alerts → notifier → loopback PagerDuty, Slack ×3 and
SMTP), the stream worker and the notifier are SIGKILLed at seeded random points and restarted. The alert stream
holds exactly the transitions of an undisturbed run (`tailwatch replay`), and every channel received each of its
transitions exactly once — counted by delivery key (fingerprint / change@window_end / channel), which the HTTP
requests and e-mails carry — as many as routing the replay's alerts gives.

The notifier's one documented residual (killed after a channel accepted a message and before the outcome reached
the ledger: that one message is sent again; PagerDuty folds it by dedup_key) is kept out of the count: half a
second before each notifier kill, every channel starts turning deliveries away (503 / SMTP 451) until its
replacement is up, so nothing is accepted in that window and the count can be strict.

Seeded: TAILWATCH_CRASH_SEED (default 7) picks the kill points; any seed must pass.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.commands.notify_cmd import notify_topic_specs
from agents.commands.replay import replay_events
from agents.commands.worker import stream_topic_specs
from agents.notify.process import NotifierProcess
from agents.rules_files import load_rules
from agents.settings import KafkaSettings
from agents.topics import ensure_topics
from pipeline.parsing import ParseStats
from pipeline.rules.engine import RuleEngine
from tests.captures import canonical as canonical_json
from tests.receivers import HttpReceiver, Reply, SmtpReceiver
from tests.reliability_channels_support import (
    accept,
    channel_env,
    channel_file,
    channel_of,
    delivered,
    expected_deliveries,
    incident_capture,
    refuse,
)
from tests.support import read_topic
from tests.test_agents.test_stream_worker import start_worker, stop, wait_ready
from tests.test_agents.test_worker_restart import trickle

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

SEED = int(os.environ.get("TAILWATCH_CRASH_SEED", "7"))


def canonical(alert: dict[str, Any]) -> bytes:
    """An alert without the live-only `provenance.input` (the logs offsets that fed it; null in a replay)."""
    return canonical_json({**alert, "provenance": {**alert["provenance"], "input": None}})


def kill_plan(seed: int) -> list[tuple[float, str]]:
    """(seconds after ingest starts, what to kill): the worker three times (issue 7: kill -9 it 3 times), the
    notifier twice, at random points. A kill due while its process is still restarting follows right after."""
    rng = random.Random(seed)
    return sorted([(rng.uniform(1.5, 3.0), "worker"), (rng.uniform(4.0, 7.0), "worker"),
                   (rng.uniform(8.0, 11.0), "worker"), (rng.uniform(1.0, 4.0), "notifier"),
                   (rng.uniform(5.0, 8.0), "notifier")])


async def alerts_when_complete(settings: KafkaSettings, want: set[bytes], timeout_s: float) -> list[Any]:
    """The alerts topic, read again until it holds every wanted alert (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        messages = await read_topic(settings.bootstrap or "", settings.topic("alerts"), idle_s=1.5, timeout_s=60)
        if want <= {canonical(m.value) for m in messages} or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(1.0)


def test_killed_worker_and_notifier_deliver_each_transition_once(apache_kafka: Any, tmp_path: Path) -> None:
    settings = KafkaSettings(apache_kafka.bootstrap, f"rc{uuid.uuid4().hex[:10]}", 4, 1)
    capture = incident_capture(tmp_path / "capture.jsonl")
    rules = load_rules()
    args = argparse.Namespace(inputs=[str(capture)], lateness_ms=10_000, route=[])
    _, replay_alerts = replay_events(args, ParseStats(), RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    expected = expected_deliveries(replay_alerts)
    assert len(replay_alerts) >= 20 and len(set(map(channel_of, expected))) == 5
    channels = channel_file(tmp_path / "channels.yaml")
    plan = kill_plan(SEED)
    figures: dict[str, Any] = {}
    logs: list[str] = []  # the killed notifiers' logs, for a failure's message

    async def scenario() -> None:
        bootstrap = settings.bootstrap or ""
        specs = {spec.name: spec for spec in stream_topic_specs(settings) + notify_topic_specs(settings)}
        await ensure_topics(bootstrap, list(specs.values()))
        with HttpReceiver(default=Reply()) as http, SmtpReceiver() as smtp:
            env = channel_env(http, smtp)

            def new_notifier() -> NotifierProcess:
                notifier = NotifierProcess(settings, str(channels), str(tmp_path / "notifier"), relay=False,
                                           env=env, app_id=f"{settings.topic_prefix}-notifier")
                assert notifier.ready.wait(90) and notifier.process.poll() is None, notifier.stderr[-3000:]
                return notifier

            procs: dict[str, Any] = {"worker": start_worker(settings, tmp_path / "worker"),
                                     "notifier": await asyncio.to_thread(new_notifier)}
            try:
                await asyncio.to_thread(wait_ready, procs["worker"], 60.0)
                started = time.monotonic()
                ingest = asyncio.create_task(trickle(settings, capture, pieces=60, pause_s=0.3))

                async def faults(what: str) -> None:  # the worker's and the notifier's, independently
                    for at in [t for t, who in plan if who == what]:
                        await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
                        figures.setdefault("while_ingesting", []).append(not ingest.done())
                        figures.setdefault("kills", []).append((what, round(time.monotonic() - started, 1)))
                        if what == "worker":
                            procs["worker"].kill()  # SIGKILL: no commit, no flush
                            procs["worker"].wait(timeout=10)
                            procs["worker"] = start_worker(settings, tmp_path / "worker")
                            await asyncio.to_thread(wait_ready, procs["worker"], 90.0)
                        else:
                            refuse(http, smtp)
                            await asyncio.sleep(0.5)  # outcomes of what was accepted before reach the ledger
                            procs["notifier"].kill()
                            logs.append(procs["notifier"].stderr)
                            procs["notifier"] = await asyncio.to_thread(new_notifier)
                            accept(http, smtp)

                await asyncio.gather(faults("worker"), faults("notifier"))
                assert all(figures["while_ingesting"][:2]), "the first faults came after the input had been sent"
                await ingest
                figures["ingest_s"] = round(time.monotonic() - started, 1)
                want = {canonical(a) for a in replay_alerts}
                messages = await alerts_when_complete(settings, want, timeout_s=120)
                positions: dict[int, int] = {}
                for message in messages:
                    positions[message.partition] = max(positions.get(message.partition, 0), message.offset + 1)
                notifier = procs["notifier"]
                settled = await asyncio.to_thread(notifier.wait_settled, positions, 120.0)
                assert settled, notifier.stderr[-4000:]
                figures["settled_s"] = round(time.monotonic() - started, 1)
                ledger = await read_topic(bootstrap, settings.topic("deliveries"), idle_s=1.5)
            finally:
                procs["notifier"].stop()
                logs.append(procs["notifier"].stderr)
                if os.environ.get("TAILWATCH_CRASH_LOGS"):
                    Path(os.environ["TAILWATCH_CRASH_LOGS"]).write_text("\n=== next notifier ===\n".join(logs))
                stop(procs["worker"])

            live = Counter(canonical(m.value) for m in messages)
            assert set(live) == want, (f"the alert stream differs from an undisturbed run's: missing "
                                       f"{sorted(want - set(live))[:3]}, extra {sorted(set(live) - want)[:3]}")
            figures["alert_events"] = sum(live.values())
            figures["republished"] = sum(live.values()) - len(live)
            got = delivered(http, smtp)
            lost, extra = expected - got, got - expected
            assert not lost and not extra, f"lost {sorted(lost)}, duplicated/extra {sorted(extra)}"
            outcomes = [m.value for m in ledger if m.value and not (m.key or b"").startswith((b"alert/", b"read/"))]
            assert {o["key"] for o in outcomes} == set(expected)  # one outcome each, all delivered
            assert {o["outcome"] for o in outcomes} == {"delivered"}
            figures["deliveries"] = sum(got.values())
            figures["per_channel"] = dict(Counter(map(channel_of, got)))
            figures["refused_attempts"] = sum(1 for r in http.requests() if r.reply.status == 503) + smtp.attempts \
                - len(smtp.messages())

    asyncio.run(scenario())
    print(f"\ncrashes with deliveries (seed {SEED}): kills (what, s) {figures['kills']}, "
          f"{figures['alert_events']} alert events ({figures['republished']} republished after the worker crash), "
          f"{figures['deliveries']} deliveries {figures['per_channel']}, "
          f"{figures['refused_attempts']} refused attempts retried, "
          f"kills while ingesting {figures['while_ingesting']}, lost 0, duplicated 0, "
          f"ingest {figures['ingest_s']} s, all settled {figures['settled_s']} s after the start")
