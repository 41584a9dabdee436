"""Issue 16, item 4 (the replay half): on a capture where each endpoint stays under 1,000 requests a minute and the
service exceeds 10,000 a minute for 7 minutes, `tailwatch replay` (files) and `replay --topic` (the logs topic's
history over several partitions) give factory-service-traffic-spike once, and no endpoint traffic alert."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from agents.settings import KafkaSettings
from pipeline.timestamps import ms_to_iso
from schemas.metrics import ServicePaneSnapshot
from tests.service_capture import SPIKE_MINUTES, service_spike_capture
from tests.test_agents.test_silences_and_topic_replay import alerts_of, tailwatch
from tests.test_agents.test_stream_worker import ingest
from tests.test_pipeline.records import BASE_MS


def spike_alerts(alerts: list[dict]) -> list[tuple[str, str, str, str, float | None]]:
    return [(a["rule"], a["change"], a["starts_at"], a["labels"].get("endpoint", "-"), a["value"]) for a in alerts]


EXPECTED = [
    ("factory-service-traffic-spike", "firing", ms_to_iso(BASE_MS + (SPIKE_MINUTES.start + 5) * 60_000), "-", 10_800),
    ("factory-service-traffic-spike", "resolved", ms_to_iso(BASE_MS + (SPIKE_MINUTES.start + 5) * 60_000), "-",
     240),
]


def test_replay_fires_the_service_rule_once_and_no_endpoint_rule(tmp_path: Path) -> None:
    capture = service_spike_capture(tmp_path / "spike.jsonl", BASE_MS)
    replayed = tailwatch("replay", str(capture))
    alerts = alerts_of(replayed)
    assert spike_alerts(alerts) == EXPECTED
    assert alerts[0]["labels"] == {"service": "factory-api", "rule": "factory-service-traffic-spike"}
    assert alerts[1]["ends_at"] == ms_to_iso(BASE_MS + (SPIKE_MINUTES.stop + 1) * 60_000)
    assert "service_panes=14 alerts=2" in replayed.stderr.splitlines()[-1]

    endpoints = tailwatch("replay", str(capture), "--metrics", "--no-digests")
    per_endpoint = [orjson.loads(line) for line in endpoints.stdout.splitlines()]
    assert max(p["total"] for p in per_endpoint) == 900  # every endpoint under factory-traffic-spike's 1000
    services = tailwatch("replay", str(capture), "--service-metrics")
    assert services.returncode == 0, services.stderr
    panes = [ServicePaneSnapshot.model_validate(orjson.loads(line)) for line in services.stdout.splitlines()]
    assert [p.total for p in panes] == [10_800 if m in SPIKE_MINUTES else 240 for m in range(14)]
    assert all(p.endpoints == 12 and p.late_endpoint_panes == 0 and p.p95_ms == 12.5 for p in panes)
    assert sum(p["total"] for p in per_endpoint) == sum(p.total for p in panes)


@pytest.mark.integration
def test_replay_topic_over_partitions_gives_the_service_alerts_of_file_replay(kafka_settings: KafkaSettings,
                                                                               tmp_path: Path) -> None:
    """Ingested into 4 logs partitions, the endpoints spread over them: the backtest's service stage hears every
    partition and gives exactly the file replay's alerts."""
    capture = service_spike_capture(tmp_path / "spike.jsonl", BASE_MS)
    asyncio.run(ingest(kafka_settings, capture))
    from_topic = tailwatch("replay", "--topic", settings=kafka_settings)
    assert spike_alerts(alerts_of(from_topic)) == EXPECTED
    assert "service_panes=14 late_endpoint_panes=0 alerts=2" in from_topic.stderr, from_topic.stderr
