"""`tailwatch probe` against a real HTTP server on 127.0.0.1 and the embedded broker: healthy, failing (500,
timeout, connection refused), recovering; the rule state survives restarts."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from agents.commands.probe_cmd import probe_topic_specs
from agents.embedded_broker import free_port
from agents.probe import Probe, ProbePlan
from agents.settings import KafkaSettings
from agents.topic_reader import topic_messages
from agents.topics import ensure_topics
from pipeline.timestamps import ms_to_iso
from schemas.alerts import AlertEvent
from schemas.probes import ProbeResult, ProbeRuleSpec, ProbeTarget
from tests.kafka_tier import ApacheKafka

pytestmark = pytest.mark.integration


class Gateway:
    """A /health endpoint whose answer the test sets: `ok` (200), `error` (500), `slow` (past the timeout);
    `stop()` closes the port (connection refused), `start()` opens it again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.hits = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    async def _health(self, _request: web.Request) -> web.Response:
        self.hits += 1
        if self.mode == "slow":
            await asyncio.sleep(3)
        if self.mode == "error":
            return web.json_response({"status": "degraded"}, status=500)
        return web.json_response({"status": "healthy"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    server = Gateway()
    await server.start()
    yield server
    await server.stop()


async def read(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(message.value) async for message in topic_messages(bootstrap, topic, idle_s=1.0)]


def plan_for(url: str) -> ProbePlan:
    return ProbePlan([ProbeTarget(url=url)], interval_s=0.1, timeout_s=0.5, rule=ProbeRuleSpec())


async def started_probe(settings: KafkaSettings, url: str) -> Probe:
    assert settings.bootstrap
    await ensure_topics(settings.bootstrap, probe_topic_specs(settings))
    probe = Probe(settings.bootstrap, settings.topic("probes"), settings.topic("alerts"), plan_for(url))
    await probe.start()
    return probe


async def test_fires_once_after_the_second_failure_and_resolves_after_recovery(
        kafka_settings: KafkaSettings, gateway: Gateway) -> None:
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    probe = await started_probe(kafka_settings, gateway.url)
    changes = []
    try:
        assert await probe.recover() == 0
        async with aiohttp.ClientSession() as session:
            for mode in ["ok", "error", "slow", "refused", "error", "ok", "ok"]:
                if mode == "refused":
                    await gateway.stop()
                else:
                    if gateway._runner is None:
                        await gateway.start()
                    gateway.mode = mode
                alerts = await probe.round(session)
                changes.append([alert["change"] for alert in alerts])
    finally:
        await probe.stop()
    assert changes == [[], [], ["firing"], [], [], ["resolved"], []]

    results = [ProbeResult.model_validate(r) for r in await read(bootstrap, kafka_settings.topic("probes"))]
    results.sort(key=lambda r: r.checked_at)
    assert [(r.ok, r.status) for r in results] == [(True, 200), (False, 500), (False, None), (False, None),
                                                    (False, 500), (True, 200), (True, 200)]
    assert results[1].error == "status 500, expected 200"
    assert results[2].error == "no response within 0.5 s" and 450 <= results[2].latency_ms < 3000
    assert results[3].error is not None and "ClientConnectorError" in results[3].error

    alerts = [AlertEvent.model_validate(a) for a in await read(bootstrap, kafka_settings.topic("alerts"))]
    assert [(a.change, a.state) for a in alerts] == [("firing", "firing"), ("resolved", "resolved")]
    firing, resolved = alerts
    assert firing.active_since == ms_to_iso(results[1].checked_at)
    assert firing.starts_at == ms_to_iso(results[2].checked_at)  # the second consecutive failure
    assert resolved.ends_at == ms_to_iso(results[5].checked_at)  # the first success after it
    assert firing.fingerprint == resolved.fingerprint
    assert firing.rule == "factory-uptime-probe" and firing.severity == "CRITICAL"
    assert firing.channels == ["pagerduty", "slack-critical"]
    assert firing.labels["url"] == gateway.url


async def restart_scenario(settings: KafkaSettings, gateway: Gateway, between: Any = None) -> None:
    """One failure, a new probe process (`between` may restart the broker first), a second failure → firing;
    then a crash lost a resolve: the next start publishes it, once."""
    bootstrap = settings.bootstrap
    assert bootstrap

    async def one_round(mode: str) -> list[str]:
        gateway.mode = mode
        probe = await started_probe(settings, gateway.url)
        try:
            await probe.recover()
            async with aiohttp.ClientSession() as session:
                return [alert["change"] for alert in await probe.round(session)]
        finally:
            await probe.stop()

    assert await one_round("error") == []  # one failure, then the probe stops
    probe = await started_probe(settings, gateway.url)
    try:
        for _ in range(2):  # recovering twice folds the history once
            assert await probe.recover() == 0
            assert probe.rule.states[gateway.url].failures == 1
    finally:
        await probe.stop()
    if between is not None:
        await asyncio.to_thread(between)
    assert await one_round("error") == ["firing"]  # a new process: the first failure was remembered

    # A probe that crashed after publishing a successful result but before its alert:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        results = await read(bootstrap, settings.topic("probes"))
        crashed = ProbeResult(url=gateway.url, ok=True, status=200, latency_ms=2, error=None,
                              checked_at=max(r["checked_at"] for r in results) + 1000)
        await producer.send_and_wait(settings.topic("probes"), crashed.model_dump_json().encode(),
                                     key=gateway.url.encode())
    finally:
        await producer.stop()
    probe = await started_probe(settings, gateway.url)
    try:
        assert await probe.recover() == 1  # the lost resolve
        assert await probe.recover() == 0  # and only once
        assert probe.rule.states == {}  # resolved: nothing failing
    finally:
        await probe.stop()
    alerts = await read(bootstrap, settings.topic("alerts"))
    assert [a["change"] for a in alerts] == ["firing", "resolved"]
    assert alerts[1]["ends_at"] == ms_to_iso(crashed.checked_at)


async def test_state_survives_restarts_and_a_lost_alert_is_published_on_start(
        kafka_settings: KafkaSettings, gateway: Gateway) -> None:
    await restart_scenario(kafka_settings, gateway)


@pytest.mark.kafka
async def test_on_apache_kafka_state_survives_a_broker_restart_too(apache_kafka: ApacheKafka,
                                                                   gateway: Gateway) -> None:
    settings = KafkaSettings(bootstrap=apache_kafka.bootstrap, topic_prefix=f"p{uuid.uuid4().hex[:10]}",
                             partitions=4, replication_factor=1)
    await restart_scenario(settings, gateway, between=apache_kafka.restart)


async def test_the_command_checks_count_rounds_and_alerts(kafka_settings: KafkaSettings, gateway: Gateway) -> None:
    bootstrap = kafka_settings.bootstrap
    assert bootstrap
    gateway.mode = "error"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agents.cli", "probe", "--url", gateway.url, "--interval", "0.2", "--timeout", "1",
        "--count", "3", "--bootstrap", bootstrap, "--topic-prefix", kafka_settings.topic_prefix,
        stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, stderr.decode()
    assert stderr.decode().strip().splitlines()[-1] == "checks=3 failed=3 alerts=1 rejected=0"
    assert gateway.hits == 3
    alerts = await read(bootstrap, kafka_settings.topic("alerts"))
    assert [(a["rule"], a["change"]) for a in alerts] == [("factory-uptime-probe", "firing")]

