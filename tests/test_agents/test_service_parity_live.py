"""Replay equals live for the service stage: `tailwatch run --exit-when-done` (ingest, the worker's two stages and
the notifier on the embedded broker) prints the service alerts `tailwatch replay` prints, on a capture where every
endpoint stays under 1,000 requests a minute while the Worker as a whole is above 10,000 for 7 minutes: the
endpoint rule (factory-traffic-spike, 1,000/min) stays silent and the Worker-wide one
(factory-service-traffic-spike, > 10,000/min for 5 minutes) fires once."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from schemas.alerts import AlertEvent
from tests.test_agents.test_run import tailwatch

pytestmark = pytest.mark.integration

SERVICE = "factory-api"
ENDPOINTS = [f"/api/factory/e{i:02d}" for i in range(12)]
T0 = 1_767_700_800_000  # 2026-01-06T12:00:00Z
BUSY = range(2, 9)  # the 7 minutes above 10,000 requests
BUSY_PER_ENDPOINT = 900  # 12 x 900 = 10,800 a minute, each endpoint under 1,000
QUIET_PER_ENDPOINT = 200


def tail_event(t_ms: int, endpoint: str, request: int, rng: random.Random) -> bytes:
    """One compact wrangler tail event of a request with its FactoryLog."""
    duration = rng.randint(5, 60)
    factory_log = {"timestamp": f"2026-01-06T12:{(t_ms - T0) // 60_000:02d}:{(t_ms - T0) % 60_000 / 1000:06.3f}Z",
                   "level": "info", "service": SERVICE, "endpoint": endpoint, "request_id": f"r{request}",
                   "tenant_id": "tnt_acme", "method": "GET", "path": endpoint, "status": 200,
                   "duration_ms": duration}
    return orjson.dumps({
        "wallTime": duration, "cpuTime": 2, "truncated": False, "outcome": "ok", "scriptName": SERVICE,
        "exceptions": [], "logs": [{"message": [orjson.dumps(factory_log).decode()], "level": "log",
                                    "timestamp": t_ms}],
        "eventTimestamp": t_ms,
        "event": {"request": {"url": f"https://api.factory.example.com{endpoint}", "method": "GET"},
                  "response": {"status": 200}},
    })


def spike_capture(path: Path, minutes: int = 12, seed: int = 7) -> tuple[Path, int]:
    """The capture (JSON Lines, in time order up to a second of disorder) and how many requests it holds."""
    rng = random.Random(seed)
    count = 0
    with path.open("wb") as out:
        for minute in range(minutes):
            per_endpoint = BUSY_PER_ENDPOINT if minute in BUSY else QUIET_PER_ENDPOINT
            events = []
            for endpoint in ENDPOINTS:
                for i in range(per_endpoint):
                    t = T0 + minute * 60_000 + i * 60_000 // per_endpoint + rng.randrange(0, 60_000 // per_endpoint)
                    events.append((t + rng.randrange(0, 1_000), t, endpoint))
            for _arrival, t, endpoint in sorted(events):
                out.write(tail_event(t, endpoint, count, rng) + b"\n")
                count += 1
    return path, count


def test_run_gives_the_service_alerts_replay_gives(tmp_path: Path) -> None:
    capture, requests = spike_capture(tmp_path / "spike.jsonl")
    assert requests == len(ENDPOINTS) * (len(BUSY) * BUSY_PER_ENDPOINT + (12 - len(BUSY)) * QUIET_PER_ENDPOINT)
    replay = tailwatch("replay", str(capture))
    assert replay.returncode == 0, replay.stderr[-3000:]
    live = tailwatch("run", "--from", str(capture), "--exit-when-done", timeout_s=600)
    assert live.returncode == 0, live.stderr[-3000:]
    replay_alerts = [orjson.loads(line) for line in replay.stdout.splitlines()]
    live_alerts = [orjson.loads(line) for line in live.stdout.splitlines()]
    for alert in live_alerts:
        AlertEvent.model_validate(alert)
    # the service rule's windows are service panes: no logs-topic offsets, live or replayed
    assert all(alert["provenance"]["input"] is None for alert in live_alerts + replay_alerts)
    assert live_alerts == replay_alerts
    assert {alert["rule"] for alert in live_alerts} == {"factory-service-traffic-spike"}, "endpoint rules silent"
    firing = [alert for alert in live_alerts if alert["change"] == "firing"]
    assert len(firing) == 1
    assert firing[0]["labels"]["service"] == SERVICE and "endpoint" not in firing[0]["labels"]
    assert firing[0]["value"] > 10_000
