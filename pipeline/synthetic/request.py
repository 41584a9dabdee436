"""One synthetic request: what happens to it (its fate under the incidents in effect), and the tail event it leaves.

`RequestMaker.event` draws from the traffic's random stream in a fixed order, so the same seed gives the same
events.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.synthetic.clients import fetch_event, pick_client
from pipeline.synthetic.draws import uuid4
from pipeline.synthetic.failures import D1_FAILURE_MESSAGE, LOG_CAP, OUTAGE_ERRORS, SERVER_ERRORS, STACKS, Failure
from pipeline.synthetic.profiles import EndpointProfile, Incident, TrafficMix
from pipeline.timestamps import ms_to_iso


def _js_number(value: float) -> int | float:
    """A float as JSON.stringify prints it: integral values without `.0`."""
    return int(value) if value == int(value) else value


def log_entry(message: list[Any], level: str, t_ms: int) -> dict[str, Any]:
    """One entry of a tail event's `logs`: what a `console.log` (or `.warn`, `.error`...) left."""
    return {"message": message, "level": level, "timestamp": t_ms}


@dataclass(slots=True)
class Route:
    """An endpoint profile prepared for drawing: rates, distributions and the incidents that touch it."""

    profile: EndpointProfile
    script: str
    rate_per_ms: float
    mu: float
    sigma: float
    cpu_mu: float
    param_cum_weights: list[float]
    incidents: tuple[Incident, ...]
    max_multiplier: float
    next_ms: float = 0.0
    d1_dists: list[tuple[float, float]] = field(default_factory=list)


@dataclass(slots=True)
class Effects:
    """What the baseline and the incidents in effect do to one request: latency factor and failure odds."""

    latency: float = 1.0
    server_error: float = 0.0
    down: float = 0.0
    not_found: float = 0.0
    d1_failure: float = 0.0


def fill(route: str, param: str | None) -> str:
    """The route template with its `:param` segment filled in."""
    if param is None:
        return route
    return "/".join(param if segment.startswith(":") else segment for segment in route.split("/"))


class RequestMaker:
    """Makes the tail events of single requests, drawing from a traffic run's random stream."""

    def __init__(self, rng: random.Random, mix: TrafficMix, versions: Mapping[str, str]) -> None:
        self.rng = rng
        self.mix = mix
        self.versions = versions  # service -> its script version id

    def event(self, route: Route, start_ms: int) -> tuple[int, dict[str, Any]]:
        """One request starting at `start_ms`: when it completes (its tail event's arrival before any delivery
        delay), and the tail event it leaves."""
        rng = self.rng
        profile = route.profile
        effects = self._effects(route, start_ms) if route.incidents else self._baseline(profile)
        fate = self._fate(profile, effects)
        param = self._param(route, fate)
        path = fill(profile.route, param)
        query = rng.choice(profile.queries) if fate not in ("not_found", "down") else ""
        client = pick_client(rng, profile)
        tenant = rng.choice(client.tenants) if client.tenants else None
        runtime = self._runtime_failure(profile, fate)
        structured = profile.structured and runtime is None and not (
            fate in ("ok", "not_found") and rng.random() < self.mix.unstructured_rate)

        d1, d1_ms, status, failure = self._work(route, fate, effects.latency)
        if fate == "not_found":
            duration = max(1, round(rng.lognormvariate(route.mu, route.sigma) * 0.35))
        elif failure is not None and failure[0] == 504:
            duration = 5000 + rng.randrange(40)
        else:
            duration = max(1, round(rng.lognormvariate(route.mu, route.sigma) * effects.latency), math.ceil(d1_ms))
        cpu = max(0, round(rng.lognormvariate(route.cpu_mu, 0.5)))
        wall = duration + rng.randrange(3) + (rng.randrange(2, 40) if rng.random() < 0.15 else 0)  # waitUntil
        logged_ms = start_ms + duration
        outcome = failure[1] if failure is not None else "ok"
        logs: list[dict[str, Any]] = []
        exceptions: list[dict[str, Any]] = []
        if failure is not None and failure[4] is not None:
            exceptions.append({"stack": STACKS[failure[4]], "name": failure[4], "message": failure[3],
                               "timestamp": logged_ms + 1})
        response: int | None = status
        if runtime == "canceled":
            outcome, response, wall = "canceled", None, wall + rng.randrange(200, 3000)
            logs.append(log_entry([f"{profile.method} {path}: client disconnected"], "log", start_ms + 1))
        elif runtime == "exceededCpu":
            outcome, response, cpu = "exceededCpu", 503, 50 + rng.randrange(3)
            exceptions.append({"stack": "    at renderPreview (index.js:2210:17)\n"
                                        "    at async Object.fetch (index.js:1502:14)",
                               "name": "Error", "message": "Worker exceeded CPU time limit.",
                               "timestamp": logged_ms})
            logs.append(log_entry([f"rendering {path} ({rng.randrange(800, 4000)} nodes)"], "log", start_ms + 1))
        elif runtime == "truncated":
            logs.extend(self._oversized_logs(start_ms, logged_ms))
            logs.append(log_entry([LOG_CAP], "warn", logged_ms))
        elif structured:
            logs.append(self._factory_log(profile, fate, status, failure, param, tenant, path + query, duration,
                                          d1, logged_ms))
        elif profile.route == "/api/health":
            logs.append(log_entry(["health check ok - d1 reachable, kv reachable"], "log", logged_ms))
        elif profile.structured and rng.random() < 0.5:  # an unstructured line instead of the FactoryLog
            logs.append(log_entry([f"{profile.method} {path}{query} -> {status} in {duration}ms"], "log", logged_ms))

        event: dict[str, Any] = {
            "wallTime": wall, "cpuTime": cpu, "truncated": runtime == "truncated", "executionModel": "stateless",
            "outcome": outcome, "scriptVersion": {"id": self.versions[profile.service]},
            "scriptName": route.script, "diagnosticsChannelEvents": [], "exceptions": exceptions, "logs": logs,
            "eventTimestamp": start_ms,
            "event": fetch_event(rng, self.mix, profile, client, tenant, path + query, response),
        }
        return start_ms + wall, event

    def _effects(self, route: Route, t_ms: int) -> Effects:
        profile = route.profile
        mix = self.mix
        effects = Effects(server_error=mix.server_error_rate)
        if profile.structured:
            effects.not_found = mix.not_found_rate if profile.method == "GET" else 0.0
        for incident in route.incidents:
            if not incident.active(t_ms):
                continue
            kind, value = incident.kind, incident.intensity
            if kind == "slow":
                effects.latency *= value
            elif kind == "errors":
                effects.server_error = min(1.0, effects.server_error + value)
            elif kind == "down":
                effects.down = max(effects.down, value)
            elif kind == "not_found":
                effects.not_found = max(effects.not_found, value)
            elif kind == "d1_failures":
                effects.d1_failure = max(effects.d1_failure, value)
        return effects

    def _baseline(self, profile: EndpointProfile) -> Effects:
        not_found = self.mix.not_found_rate if profile.structured and profile.method == "GET" else 0.0
        return Effects(server_error=self.mix.server_error_rate, not_found=not_found)

    def _fate(self, profile: EndpointProfile, effects: Effects) -> str:
        """ok, down, error, not_found, bad_request, d1_retried or d1_failed."""
        rng = self.rng
        roll = rng.random()
        fate = "ok"
        if roll < effects.down:
            fate = "down"
        elif roll < effects.down + effects.server_error:
            fate = "error"
        elif roll < effects.down + effects.server_error + effects.not_found:
            fate = "not_found"
        elif profile.structured and profile.method != "GET" and rng.random() < self.mix.bad_request_rate:
            fate = "bad_request"
        if fate == "ok" and profile.d1 and effects.d1_failure and rng.random() < effects.d1_failure:
            fate = "d1_retried" if rng.random() < 0.5 else "d1_failed"
        return fate

    def _param(self, route: Route, fate: str) -> str | None:
        """The value of the route's `:param` segment: a missing one for a 404."""
        profile = route.profile
        if ":" not in profile.route:
            return None
        if fate == "not_found" and profile.missing_params:
            return self.rng.choice(profile.missing_params)
        if fate == "not_found" or not profile.params:
            return uuid4(self.rng)
        return self.rng.choices(profile.params, cum_weights=route.param_cum_weights)[0]

    def _runtime_failure(self, profile: EndpointProfile, fate: str) -> str | None:
        """A runtime failure that leaves no FactoryLog: a client that went away, a CPU-limit kill, a bulk import
        that hits the log cap."""
        if fate != "ok" or profile.method == "OPTIONS":  # preflights are answered before any work
            return None
        mix = self.mix
        roll = self.rng.random()
        if roll < mix.canceled_rate:
            return "canceled"
        if roll < mix.canceled_rate + mix.exceeded_cpu_rate:
            return "exceededCpu"
        if profile.method == "POST" and roll < mix.canceled_rate + mix.exceeded_cpu_rate + mix.truncated_rate:
            return "truncated"
        return None

    def _factory_log(self, profile: EndpointProfile, fate: str, status: int, failure: Failure | None,
                     param: str | None, tenant: str | None, path: str, duration_ms: int, d1: list[dict[str, Any]],
                     logged_ms: int) -> dict[str, Any]:
        """The log entry holding the app's FactoryLog, as `console.log(JSON.stringify(log))` leaves it."""
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 or fate == "d1_retried" else "INFO"
        factory_log: dict[str, Any] = {
            "timestamp": ms_to_iso(logged_ms), "level": level, "service": profile.service,
            "endpoint": profile.log_endpoint, "request_id": uuid4(self.rng), "tenant_id": tenant or "default",
            "method": profile.method, "path": path, "status": status, "duration_ms": duration_ms,
        }
        if failure is not None:
            factory_log["error"] = {"message": failure[3], "code": failure[2]}
        elif status == 404:
            factory_log["error"] = {"message": f"Not found: {param or path}", "code": "NOT_FOUND"}
        elif status >= 400:
            factory_log["error"] = {"message": "Invalid template payload", "code": "VALIDATION_ERROR"}
        if d1:
            factory_log["metadata"] = {"d1": d1}
        js_level = {"ERROR": "error", "WARN": "warn"}.get(level, "log")
        return log_entry([orjson.dumps(factory_log).decode()], js_level, logged_ms)

    def _work(self, route: Route, fate: str,
              latency: float) -> tuple[list[dict[str, Any]], float, int, Failure | None]:
        """The D1 queries made, their total time, the status, and the failure (if any)."""
        rng = self.rng
        profile = route.profile
        failure: Failure | None = None
        if fate == "error":
            failure = rng.choice(SERVER_ERRORS)
        elif fate == "down":
            failure = rng.choice(OUTAGE_ERRORS)
        elif fate == "d1_failed":
            failure = (503, "ok", "D1_CONNECTION_FAILED", D1_FAILURE_MESSAGE, None)
        status = failure[0] if failure is not None else {"not_found": 404, "bad_request": 400}.get(
            fate, profile.ok_status)
        d1: list[dict[str, Any]] = []
        total_ms = 0.0
        queries = list(zip(profile.d1, route.d1_dists, strict=True))
        if fate in ("not_found", "bad_request", "down"):
            queries = queries[:1]  # a lookup that finds nothing, or nothing at all when the upstream is down
            if fate == "down":
                queries = []
        for index, (query, (mu, sigma)) in enumerate(queries):
            if fate in ("d1_failed", "d1_retried") and index == 0:
                failed_ms = round(rng.uniform(20, 250), 2)
                d1.append({"database": query.database, "table": query.table, "query_type": query.query_type,
                           "duration_ms": _js_number(failed_ms), "rows_read": 0, "rows_written": 0,
                           "error_code": "connection_failed"})
                total_ms += failed_ms
                if fate == "d1_failed":
                    break
            ms = max(0.01, round(rng.lognormvariate(mu, sigma) * latency, 2))
            rows_read = 0 if fate == "not_found" else rng.randint(*query.rows_read)
            d1.append({"database": query.database, "table": query.table, "query_type": query.query_type,
                       "duration_ms": _js_number(ms), "rows_read": rows_read,
                       "rows_written": rng.randint(*query.rows_written)})
            total_ms += ms
        return d1, total_ms, status, failure

    def _oversized_logs(self, start_ms: int, logged_ms: int) -> list[dict[str, Any]]:
        """A bulk import that logs its rows until the runtime's 256 KB cap cuts the logs off."""
        rng = self.rng
        batch = f"imp_{rng.randrange(10**6):06d}"
        rows = ", ".join(f"row {i}: sku=FX-{10000 + 37 * i} qty={rng.randrange(1, 50)} status=ok"
                         for i in range(1, 120))
        return [log_entry(["import: received batch", batch, "rows=", rng.randrange(1000, 9000)], "log", start_ms + 5),
                log_entry([f"import: first page of parsed rows -> {rows}"], "log", (start_ms + logged_ms) // 2)]
