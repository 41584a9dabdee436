"""`tailwatch silences add|list|expire` on the compacted silences topic, `replay --silences`, and
`tailwatch replay --topic [--since --until]`: the backtest over the logs topic's history equals file replay."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from agents.commands.replay import alert_order
from agents.settings import KafkaSettings
from pipeline.timestamps import ms_to_iso
from schemas.alerts import AlertEvent
from tests.test_agents.test_stream_worker import ingest
from tests.test_pipeline.records import BASE_MS

pytestmark = pytest.mark.integration


def incident_capture(path: Path, start_ms: int, minutes: int, failing: range, per_minute: int = 20) -> Path:
    """FactoryLog lines (what the app prints), two endpoints, `per_minute` requests each a minute; the
    `/api/x` requests fail (503) during the `failing` minutes. A little out of order, within the lateness."""
    lines = []
    for minute in range(minutes):
        for i in range(per_minute):
            for endpoint in ("/api/x", "/api/y"):
                t = start_ms + minute * 60_000 + i * (60_000 // per_minute)
                status = 503 if endpoint == "/api/x" and minute in failing else 200
                lines.append((t + (4_000 if i % 3 == 0 else 0), orjson.dumps({
                    "timestamp": ms_to_iso(t), "level": "info", "service": "svc", "endpoint": endpoint,
                    "request_id": f"r{minute}-{i}", "tenant_id": "t", "method": "GET", "path": endpoint,
                    "status": status, "duration_ms": 12.5})))
    path.write_bytes(b"\n".join(line for _, line in sorted(lines, key=lambda pair: pair[0])) + b"\n")
    return path


def tailwatch(*args: str, settings: KafkaSettings | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    if settings is not None:
        env.update(TAILWATCH_KAFKA_BOOTSTRAP=settings.bootstrap or "", TAILWATCH_TOPIC_PREFIX=settings.topic_prefix)
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True,
                          timeout=180, env=env)


def alerts_of(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr[-3000:]
    alerts = [orjson.loads(line) for line in result.stdout.splitlines()]
    for alert in alerts:
        AlertEvent.model_validate(alert)
    return alerts


def test_silences_add_list_expire_and_replay_marks(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl", BASE_MS, 30, range(5, 16))
    plain = alerts_of(tailwatch("replay", str(capture)))
    resolved = next(a for a in plain if a["change"] == "resolved")  # a rule that fires and resolves
    rule, endpoint = resolved["rule"], resolved["labels"]["endpoint"]
    added = tailwatch("silences", "add", "--matcher", f"rule={rule}", "--matcher", f"endpoint=~{endpoint[:8]}.*",
                      "--starts", "2000-01-01T00:00:00Z", "--duration", "100000d", "--comment", "known issue",
                      "--created-by", "ops", settings=kafka_settings)
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    other = tailwatch("silences", "add", "--matcher", "rule=no-such-rule", "--duration", "2h", "--comment", "x",
                      settings=kafka_settings)
    assert other.returncode == 0, other.stderr
    listed = tailwatch("silences", "list", settings=kafka_settings)
    assert listed.returncode == 0 and listed.stdout.count("active") == 2
    assert f"{silence_id}  active" in listed.stdout and f"rule={rule},endpoint=~{endpoint[:8]}.*" in listed.stdout
    as_json = tailwatch("silences", "list", "--json", settings=kafka_settings)
    silences_file = tmp_path / "silences.jsonl"
    silences_file.write_text(as_json.stdout)

    # replay with the silences (from the file, and from the topic): the same events, the rule's non-resolve
    # transitions marked, its resolves never
    for how in (["--silences", str(silences_file)], ["--silences-topic"]):
        marked = alerts_of(tailwatch("replay", str(capture), *how, settings=kafka_settings))
        assert len(marked) == len(plain)
        for before, after in zip(plain, marked, strict=True):
            hit = (before["rule"] == rule and after["state"] == "firing"
                   and after["labels"]["endpoint"].startswith(endpoint[:8]))
            assert after["silenced_by"] == ([silence_id] if hit else [])
            assert {**after, "silenced_by": []} == before
        assert any(a["silenced_by"] for a in marked) and any(a["rule"] == rule and a["state"] == "resolved"
                                                             for a in marked)

    expired = tailwatch("silences", "expire", silence_id, settings=kafka_settings)
    assert expired.returncode == 0 and "expired at" in expired.stdout
    listed = tailwatch("silences", "list", settings=kafka_settings)
    assert silence_id not in listed.stdout and listed.stdout.count("active") == 1
    everything = tailwatch("silences", "list", "--all", settings=kafka_settings)
    assert f"{silence_id}  expired" in everything.stdout
    # expired now, but it still covers the past: a replay of the capture marks the same transitions
    again = alerts_of(tailwatch("replay", str(capture), "--silences-topic", settings=kafka_settings))
    assert any(a["silenced_by"] == [silence_id] for a in again)
    assert tailwatch("silences", "expire", "nope", settings=kafka_settings).returncode == 1
    bad = tailwatch("silences", "add", "--matcher", "rule", "--duration", "1h", "--comment", "x",
                    settings=kafka_settings)
    assert bad.returncode == 2 and "not a matcher" in bad.stderr


def test_replay_topic_equals_file_replay_and_since_until_restrict(kafka_settings: KafkaSettings,
                                                                  tmp_path: Path) -> None:
    first = incident_capture(tmp_path / "first.jsonl", BASE_MS, 30, range(5, 16))
    second = incident_capture(tmp_path / "second.jsonl", BASE_MS + 3_600_000, 20, range(2, 9))
    from_first, from_second = alerts_of(tailwatch("replay", str(first))), alerts_of(tailwatch("replay", str(second)))
    assert len(from_first) >= 3 and from_first != from_second
    asyncio.run(ingest(kafka_settings, first))
    time.sleep(1.5)
    between = ms_to_iso(int(time.time() * 1000))
    time.sleep(1.5)
    asyncio.run(ingest(kafka_settings, second))

    def from_topic(*flags: str) -> list[dict]:
        """`replay --topic`'s alerts, without the input offsets it gives as the live worker does (files have none)."""
        alerts = alerts_of(tailwatch("replay", "--topic", *flags, settings=kafka_settings))
        for alert in alerts:
            window = alert["provenance"].pop("input")
            assert window["topic"] == kafka_settings.logs_topic and window["first_offset"] <= window["last_offset"]
            alert["provenance"]["input"] = None
        return alerts

    # only the first capture published before `between`; only the second after it
    started = time.monotonic()
    assert from_topic("--until", between) == from_first
    elapsed = time.monotonic() - started
    assert from_topic("--since", between) == from_second
    # the second ingest started after the first had ended: processed as usual, not counted late
    assert from_topic() == sorted(from_first + from_second, key=alert_order)
    assert elapsed < 60
    nothing = tailwatch("replay", "--topic", "--since", "2999-01-01T00:00:00Z", settings=kafka_settings)
    assert alerts_of(nothing) == []
    assert tailwatch("replay", "--topic").returncode == 2  # no broker configured: a clear error


def test_the_live_worker_marks_silenced_transitions_as_replay_does(kafka_settings: KafkaSettings,
                                                                   tmp_path: Path) -> None:
    capture = incident_capture(tmp_path / "capture.jsonl", BASE_MS, 30, range(5, 16))
    added = tailwatch("silences", "add", "--matcher", "rule=~factory-(service-down|high-error-rate)",
                      "--starts", "2000-01-01T00:00:00Z", "--duration", "100000d", "--comment", "maintenance",
                      settings=kafka_settings)
    assert added.returncode == 0, added.stderr
    live = alerts_of(tailwatch("run", "--from", str(capture), "--exit-when-done", "--bootstrap",
                               kafka_settings.bootstrap or "", "--topic-prefix", kafka_settings.topic_prefix,
                               settings=kafka_settings))
    replayed = alerts_of(tailwatch("replay", str(capture), "--silences-topic", settings=kafka_settings))
    assert any(a["silenced_by"] == [added.stdout.strip()] for a in live)
    assert all(a["silenced_by"] == [] for a in live if a["state"] == "resolved")
    for alert in live:
        source = alert["provenance"].pop("input")
        assert source["topic"] == kafka_settings.logs_topic and source["first_offset"] <= source["last_offset"]
    assert all(a["provenance"].pop("input") is None for a in replayed)
    assert live == replayed
