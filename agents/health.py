"""`GET /health` and `GET /metrics` on the worker's web port (Faust's web server), and the facts behind them.

/health answers like the spec's health check: 200 `{"status": "healthy", "timestamp", "checks", "details"}`, or
503 with `"status": "degraded"` when any check fails. The checks (decided in `pipeline.health`):

- `broker`: a fresh Metadata request to the bootstrap address answers within `BROKER_TIMEOUT_S`;
- `agents`: the worker's Faust agents run and its tables are recovered;
- `consumer_lag`: messages behind the logs topic's high watermark, summed over the worker's partitions, under
  `--max-lag`;
- `last_record`: the last message from the logs topic (records or an ingest heartbeat) is younger than
  `--max-record-age` (since start-up while none came);
- `channels`: notification channels are configured (`TAILWATCH_CHANNELS`, names separated by commas, or
  `TAILWATCH_CHANNELS_FILE`, a YAML/JSON file whose `channels` is a mapping or a list of names or of objects
  with a `name`; for a notifier channel file, the channels whose secrets are set) and cover every channel the
  loaded rules route to. `tailwatch run` points its worker at its `--channels` file.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from agents import kafka_clients
from agents.kafka_security import KafkaSecurity
from agents.notify.config import ChannelFileError, load_channels
from agents.worker_metrics import CONTENT_TYPE, TailwatchMetrics, WorkerCollector, consumer_lag
from pipeline.health import HealthFacts, HealthLimits, HealthReport, evaluate

if TYPE_CHECKING:
    from agents.rules_files import LoadedRules
    from agents.stream_worker import MetricsWorker

BROKER_TIMEOUT_S = 3.0
CHANNELS_ENV = "TAILWATCH_CHANNELS"
CHANNELS_FILE_ENV = "TAILWATCH_CHANNELS_FILE"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def configured_channels(env: dict[str, str] | None = None) -> frozenset[str] | None:
    """The channel names configured for the notifier, or None when there is no channel configuration."""
    env = dict(os.environ) if env is None else env
    names: set[str] = set()
    found = False
    listed = env.get(CHANNELS_ENV)
    if listed is not None:
        found = True
        names.update(name.strip() for name in listed.split(",") if name.strip())
    path = env.get(CHANNELS_FILE_ENV)
    if path:
        try:  # a notifier channel file: the channels whose secrets are set
            loaded = load_channels(path, env)
        except ChannelFileError:
            pass
        else:
            return frozenset(names | {channel.name for channel in loaded if channel.active})
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            return frozenset(names) if found else None  # unreadable: not configured (the check says which)
        channels = data.get("channels") if isinstance(data, dict) else data
        if isinstance(channels, dict):
            found = True
            names.update(str(name) for name in channels)
        elif isinstance(channels, list):
            found = True
            names.update(str(item["name"]) if isinstance(item, dict) and "name" in item else str(item)
                         for item in channels)
    return frozenset(names) if found else None


def rule_channels(rules: LoadedRules) -> frozenset[str]:
    """Every channel a rule (or one of its tiers) routes to."""
    names: set[str] = set()
    for rule in rules.rule_file.rules:
        names.update(rule.channels)
        for tier in rule.tiers or ():
            names.update(tier.channels or ())
    return frozenset(names)


async def broker_answers(bootstrap: str, timeout_s: float = BROKER_TIMEOUT_S, *,
                         security: KafkaSecurity) -> str | None:
    """None when the broker answers a Metadata request on a new connection within `timeout_s`; else why not."""
    client = kafka_clients.client(bootstrap, security=security, request_timeout_ms=int(timeout_s * 1000),
                                  connections_max_idle_ms=int(timeout_s * 2000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
    except TimeoutError:
        return f"no answer from {bootstrap} within {timeout_s:g}s"
    except Exception as error:  # any failure to reach the broker is the answer
        return f"{type(error).__name__}: {error}"
    finally:
        await client.close()
    return None


def agents_running(app: Any) -> bool:
    """Every Faust agent of `app` and its actors run, and the tables have recovered (messages are processed)."""
    agents = list(app.agents.values())
    if not agents or not all(agent.state == "running" for agent in agents):
        return False
    actors: list[Any] = [actor for agent in agents for actor in agent._actors]
    if not actors or any(getattr(actor, "actor_task", None) is None or actor.actor_task.done() for actor in actors):
        return False
    recovery: Any = app.tables.recovery
    return bool(recovery.completed.is_set())


class WorkerHealth:
    """Gathers a worker's health facts and judges them."""

    def __init__(self, worker: MetricsWorker, limits: HealthLimits, channels_required: frozenset[str],
                 started_ms: int | None = None) -> None:
        self.worker = worker
        self.limits = limits
        self.channels_required = channels_required
        self.started_ms = now_ms() if started_ms is None else started_ms

    async def report(self) -> HealthReport:
        worker = self.worker
        bootstrap = worker.settings.kafka.bootstrap
        assert bootstrap
        error = await broker_answers(bootstrap, security=worker.settings.kafka.security)
        facts = HealthFacts(
            broker_ok=error is None, broker_error=error, agents_running=agents_running(worker.app),
            lag_by_partition=consumer_lag(worker), started_ms=self.started_ms,
            last_message_ms=worker.telemetry.last_message_ms, channels_configured=configured_channels(),
            channels_required=self.channels_required)
        return evaluate(facts, self.limits, now_ms())


def attach_web(worker: MetricsWorker, limits: HealthLimits, rules: LoadedRules) -> WorkerHealth:
    """Serve /health and /metrics on the worker's Faust web server, and count dead letters for /metrics."""
    from faust.web import Request, Response, View  # noqa: PLC0415 - Faust is slow to import

    health = WorkerHealth(worker, limits, rule_channels(rules))
    metrics: TailwatchMetrics = worker.telemetry
    metrics.add_collector(WorkerCollector(worker))
    app = worker.app

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            report = await health.report()
            return self.json(report.body, status=report.http_status)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(), content_type=CONTENT_TYPE)

    deadletter = app.topic(worker.settings.kafka.deadletter_topic, value_type=bytes, key_type=bytes,
                           value_serializer="raw", key_serializer="raw",
                           partitions=worker.settings.kafka.partitions)

    async def count_dead_letters(stream: Any) -> None:
        import orjson  # noqa: PLC0415

        async for values in stream.take(500, within=0.5):
            for value in values:
                try:
                    kind = str(orjson.loads(value).get("kind", "unknown"))
                except (orjson.JSONDecodeError, AttributeError):
                    kind = "unreadable"
                metrics.on_dead_letter(kind)

    app.agent(deadletter, name="deadletters")(count_dead_letters)
    return health
