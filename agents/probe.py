"""The uptime probe's I/O: check each URL every interval (aiohttp), publish every result to `<prefix>.probes`
(key: the URL) and the alerts `pipeline.probe_rule` decides to `<prefix>.alerts` (key: the fingerprint).

Restart-safe without a state store: the probe topic is the rule's source of truth. On start, the probe folds the
topic's history (oldest first) through the rule, which rebuilds every URL's state exactly, then reads the alerts
topic and publishes the transitions a crash kept off it (`missing_alerts`). Each cycle publishes its results
before its alerts, so a crash between the two is repaired by the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from agents import kafka_clients
from agents.kafka_clients import PLAINTEXT
from agents.kafka_security import KafkaSecurity
from agents.topic_reader import topic_messages
from agents.topics import KafkaUnavailable
from pipeline.probe_rule import ProbeRule, missing_alerts
from schemas.probes import ProbeResult, ProbeRuleSpec, ProbeTarget

log = logging.getLogger("tailwatch.probe")


@dataclass(frozen=True)
class ProbePlan:
    targets: list[ProbeTarget]
    interval_s: float
    timeout_s: float
    rule: ProbeRuleSpec = field(default_factory=ProbeRuleSpec)


async def check(session: aiohttp.ClientSession, target: ProbeTarget, timeout_s: float) -> dict[str, Any]:
    """One GET of one URL: a ProbeResult dict. Never raises for a failed check."""
    checked_at = int(time.time() * 1000)
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with session.get(target.url, timeout=aiohttp.ClientTimeout(total=timeout_s),
                               allow_redirects=False) as response:
            status = response.status
            await response.content.read(64 * 1024)  # the start of the body: enough to see it arrive
    except TimeoutError:
        error = f"no response within {timeout_s:g} s"
    except aiohttp.ClientError as exc:
        error = f"{type(exc).__name__}: {exc}"
    if error is None and status != target.expect_status:
        error = f"status {status}, expected {target.expect_status}"
    latency_ms = int((time.monotonic() - started) * 1000)
    return ProbeResult(url=target.url, ok=error is None, status=status, latency_ms=latency_ms, error=error,
                       checked_at=checked_at).model_dump()


class Probe:
    def __init__(self, bootstrap: str, probes_topic: str, alerts_topic: str, plan: ProbePlan, *,
                 security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.probes_topic = probes_topic
        self.alerts_topic = alerts_topic
        self.plan = plan
        self.rule = ProbeRule(plan.rule)
        self.checks = 0
        self.failed_checks = 0
        self.alerts_published = 0
        self.rejected = 0  # unreadable messages on the probe or alerts topic, skipped at recovery
        self._producer: AIOKafkaProducer | None = None

    async def start(self, connect_attempts: int = 5) -> None:
        delay = 0.5
        for attempt in range(1, connect_attempts + 1):
            producer = kafka_clients.producer(self.bootstrap, security=self.security, client_id="tailwatch-probe",
                                              acks="all", request_timeout_ms=30_000, retry_backoff_ms=200)
            try:
                await producer.start()
            except KafkaConnectionError as error:
                await producer.stop()
                if attempt == connect_attempts:
                    raise KafkaUnavailable(f"cannot reach Kafka at {self.bootstrap} after {attempt} attempts: "
                                           f"{error}") from error
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
                continue
            self._producer = producer
            return

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def recover(self) -> int:
        """Rebuild the rule state from the probe topic; publish the transitions missing from the alerts topic."""
        self.rule = ProbeRule(self.plan.rule)  # the history is the whole state: fold it from the start
        urls = {target.url for target in self.plan.targets}
        derived: list[dict[str, Any]] = []
        folded = 0
        async for message in topic_messages(self.bootstrap, self.probes_topic, security=self.security):
            try:
                result = ProbeResult.model_validate_json(message.value).model_dump()
            except ValidationError as error:
                self._reject(self.probes_topic, message.offset, str(error).splitlines()[0])
                continue
            if result["url"] in urls:
                folded += 1
                derived.extend(self.rule.on_result(result))
        published = []
        async for message in topic_messages(self.bootstrap, self.alerts_topic, security=self.security):
            try:
                alert = orjson.loads(message.value)
            except orjson.JSONDecodeError as error:
                self._reject(self.alerts_topic, message.offset, str(error))
                continue
            if isinstance(alert, dict) and alert.get("rule") == self.plan.rule.name and "fingerprint" in alert:
                published.append(alert)
        missing = missing_alerts(derived, published)
        await self._publish_alerts(missing)
        log.info("probe state recovered", extra={"fields": {
            "results": folded, "alerts_seen": len(published), "alerts_republished": len(missing),
            "failing": {url: state.failures for url, state in sorted(self.rule.states.items())}}})
        return len(missing)

    def _reject(self, topic: str, offset: int, reason: str) -> None:
        self.rejected += 1
        log.warning("unreadable message skipped", extra={"fields": {"topic": topic, "offset": offset,
                                                                    "reason": reason[:300]}})

    async def run(self, count: int | None = None, stop: asyncio.Event | None = None) -> None:
        """Check every `interval_s` until `stop` is set, or `count` rounds were done."""
        stop = stop or asyncio.Event()
        started = time.monotonic()
        rounds = 0
        async with aiohttp.ClientSession() as session:
            while not stop.is_set() and (count is None or rounds < count):
                await self.round(session)
                rounds += 1
                if count is not None and rounds >= count:
                    break
                next_at = started + rounds * self.plan.interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_at - time.monotonic()))

    async def round(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        """Check every target once; publish the results, then the alerts they caused. Returns the alerts."""
        results = await asyncio.gather(*(check(session, target, self.plan.timeout_s)
                                         for target in self.plan.targets))
        producer = self._require()
        sends = [await producer.send(self.probes_topic, value=orjson.dumps(result), key=result["url"].encode())
                 for result in results]
        await asyncio.gather(*sends)
        self.checks += len(results)
        for result in results:
            if not result["ok"]:
                self.failed_checks += 1
                log.warning("probe check failed", extra={"fields": {"url": result["url"], "error": result["error"],
                                                                    "latency_ms": result["latency_ms"]}})
        alerts = self.rule.on_results(results)
        await self._publish_alerts(alerts)
        return alerts

    async def _publish_alerts(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        producer = self._require()
        sends = [await producer.send(self.alerts_topic, value=orjson.dumps(alert), key=alert["fingerprint"].encode())
                 for alert in alerts]
        await asyncio.gather(*sends)
        self.alerts_published += len(alerts)
        for alert in alerts:
            log.info("probe alert", extra={"fields": {"rule": alert["rule"], "change": alert["change"],
                                                      "url": alert["labels"]["url"], "at": alert["ends_at"] or
                                                      alert["starts_at"]}})

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("probe not started")
        return self._producer
