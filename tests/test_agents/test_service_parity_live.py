"""Replay equals live for the service stage (issue 16, item 4, the live half): `tailwatch run --exit-when-done`
(ingest, the worker's two stages and the notifier on the embedded broker) prints the service alerts `tailwatch
replay` prints, on the capture where every endpoint stays under 1,000 requests a minute while the Worker as a whole
is above 10,000 for 7 minutes: the endpoint rule (factory-traffic-spike) stays silent and the Worker-wide one
(factory-service-traffic-spike, > 10,000/min for 5 minutes) fires once."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.alerts import AlertEvent
from tests.service_capture import service_spike_capture
from tests.test_agents.test_run import tailwatch
from tests.test_pipeline.records import BASE_MS

pytestmark = pytest.mark.integration


def test_run_gives_the_service_alerts_replay_gives(tmp_path: Path) -> None:
    capture = service_spike_capture(tmp_path / "spike.jsonl", BASE_MS)
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
    assert firing[0]["labels"] == {"service": "factory-api", "rule": "factory-service-traffic-spike"}
    assert firing[0]["value"] > 10_000
    assert "input fully processed" in live.stderr
