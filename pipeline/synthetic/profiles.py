"""What the synthetic traffic is made of: endpoint profiles, their D1 queries, incidents and the baseline mix."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

IncidentKind = Literal["errors", "slow", "down", "not_found", "spike", "d1_failures"]

INCIDENT_KINDS: frozenset[str] = frozenset(("errors", "slow", "down", "not_found", "spike", "d1_failures"))
_RATE_KINDS = frozenset(("errors", "down", "not_found", "d1_failures"))  # intensity is a probability
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class D1Query:
    """One D1 query a request makes; its latency is lognormal with these p50/p95."""

    table: str
    query_type: Literal["read", "write"]
    p50_ms: float
    p95_ms: float
    rows_read: tuple[int, int] = (1, 1)  # inclusive range
    rows_written: tuple[int, int] = (0, 0)
    database: str = "factory-db"


@dataclass(frozen=True, slots=True)
class EndpointProfile:
    """One route of the API and how its traffic behaves.

    `share` is its relative share of the traffic (the spec's target RPS for the six baseline endpoints).
    `params` are concrete values of the route's one `:param` segment (most common first; picked Zipf-like) and
    `missing_params` the values its 404s use. `structured` endpoints log a FactoryLog per request.
    """

    method: str
    route: str
    log_endpoint: str  # the FactoryLog `endpoint` field
    share: float
    p50_ms: float
    p95_ms: float
    service: str = "gateway"
    ok_status: int = 200
    structured: bool = True
    params: tuple[str, ...] = ()
    missing_params: tuple[str, ...] = ()
    queries: tuple[str, ...] = ("",)  # query strings, most common first
    d1: tuple[D1Query, ...] = ()
    cpu_p50_ms: float = 3.0


@dataclass(frozen=True, slots=True)
class Incident:
    """A while during which the traffic of some endpoints goes wrong.

    `endpoint` is a route template, matched exactly (`/api/public/factory/templates/:slug`), or a prefix ending in
    `*`, matched against route templates (`/api/public/factory/*`). Active for requests that start in
    `[start_ms, end_ms)`. `intensity` by kind:

    - `errors`: extra probability of a 5xx (0.15 → +15 % of requests fail with 500/502/503);
    - `slow`: latency multiplier, D1 queries included (8.0 → p95 eight times the baseline);
    - `down`: probability that a request fails (0.85 → 85 % answer 503/500/504, some as uncaught exceptions);
    - `not_found`: probability of a 404 (0.3 → 30 % of requests ask for a missing id);
    - `spike`: traffic multiplier (36.0 → 36 times the endpoint's request rate);
    - `d1_failures`: probability that a request's first D1 query fails with `connection_failed` (half of those
      requests recover on a retry and answer 200 — the retry is a second D1 entry —, the rest answer 503).
    """

    kind: IncidentKind
    endpoint: str
    start_ms: int
    end_ms: int
    intensity: float

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"incident kind must be one of {sorted(INCIDENT_KINDS)}: {self.kind!r}")
        if self.end_ms <= self.start_ms:
            raise ValueError("incident must end after it starts")
        if not (self.intensity >= 0 and math.isfinite(self.intensity)):
            raise ValueError("incident intensity must be a finite number >= 0")
        if self.kind in _RATE_KINDS and self.intensity > 1:
            raise ValueError(f"intensity of a {self.kind!r} incident is a probability: at most 1")

    def covers(self, route: str) -> bool:
        if self.endpoint.endswith("*"):
            return route.startswith(self.endpoint[:-1])
        return route == self.endpoint

    def active(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms < self.end_ms


@dataclass(frozen=True, slots=True)
class TrafficMix:
    """Baseline rates, as fractions of requests (of structured GET requests for `not_found_rate`)."""

    not_found_rate: float = 0.03
    server_error_rate: float = 0.005
    bad_request_rate: float = 0.02  # 400s of structured non-GET requests
    unstructured_rate: float = 0.02  # structured endpoints' requests that log no FactoryLog
    canceled_rate: float = 0.001
    exceeded_cpu_rate: float = 0.0003
    truncated_rate: float = 0.002  # of POST requests: a bulk import that hits the 256 KB log cap
    overloads_per_hour: float = 1.0  # tail sampling-mode notices (each followed by an overload-stop)
    crons: bool = True  # the Workers' scheduled events
    # `request.cf`: as each client's (some with TLS fingerprints and tlsClientAuth, ~3.3 KB per printed event),
    # `basic` (geo and TLS version only, ~2.8 KB) or `none` (no cf at all, ~1.9 KB)
    request_cf: Literal["per_client", "basic", "none"] = "per_client"


DEFAULT_MIX = TrafficMix()
