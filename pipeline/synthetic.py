"""Synthetic `wrangler tail --format json` traffic: seeded, realistic tail events and the bytes wrangler prints.

Pure: each call draws from its own `random.Random(seed)`; no clock, no I/O. The same arguments give the same
events and the same bytes.

- `generate_events(seed, start_ms, minutes, ...)` yields tail events (the runtime's `TraceItem`, keys in the order
  of real captures) in arrival order: an event arrives when its invocation finishes (`eventTimestamp` +
  `wallTime`), plus a delivery delay of up to `disorder_ms`. So `eventTimestamp` is not monotonic in the stream.
- Most request events carry one FactoryLog (the spec's interface) as a JSON string in `logs[0].message[0]`, with
  D1 query facts in `metadata.d1`. A small fraction carry none (only `event.request`/`event.response`,
  `wallTime`, `cpuTime`): CORS preflights, health checks, plain-text logs, `canceled` and `exceededCpu`
  invocations, a rare `truncated` one. Non-request events: scheduled crons and rare tail `overload` notices.
- `Incident`s bend the traffic of some endpoints for a while (5xx, latency, outage, 404s, traffic, D1 failures).
- `render_capture(events, layout)` prints events as wrangler does (4-space pretty by default).
- `demo_events(seed)` is a 90-minute capture in which several of the spec's alert rules fire and resolve.

Shapes follow shared/research/wrangler-tail-format.md and its real-layout sample.
"""

from __future__ import annotations

import base64
import heapq
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Literal

import orjson

from pipeline.timestamps import ms_to_iso

IncidentKind = Literal["errors", "slow", "down", "not_found", "spike", "d1_failures"]
Layout = Literal["pretty4", "pretty2", "compact", "jsonl"]

INCIDENT_KINDS: frozenset[str] = frozenset(("errors", "slow", "down", "not_found", "spike", "d1_failures"))
_RATE_KINDS = frozenset(("errors", "down", "not_found", "d1_failures"))  # intensity is a probability
_Z95 = 1.6448536269514722  # the standard normal's 95th percentile
MINUTE_MS = 60_000


# -- configuration --------------------------------------------------------------------------------------------


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

DEFAULT_SERVICES: Mapping[str, str] = {
    "gateway": "foundation-gateway-production",
    "planning-machine": "foundation-planning-machine-production",
}

TEMPLATE_SLUGS = (
    "modern-saas", "invoice-tracker", "crm-lite", "booking-portal", "inventory-manager", "helpdesk",
    "landing-page", "marketplace", "blog-cms", "event-ticketing", "fitness-tracker", "restaurant-orders",
    "project-board", "hr-onboarding", "survey-builder", "real-estate-listings",
)
MISSING_TEMPLATE_SLUGS = ("modern-sass", "undefined", "invoice-tracker-v1", "null", "crm", "old-landing")


def _uuid4(rng: random.Random) -> str:
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)  # version 4
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _fixed_run_ids(count: int) -> tuple[str, ...]:
    rng = random.Random(20260106)  # noqa: S311 - a simulation, not security
    return tuple(_uuid4(rng) for _ in range(count))


BUILD_SPEC_RUN_IDS = _fixed_run_ids(40)

_LIST_QUERIES = ("", "", "", "?limit=20", "?category=saas", "?category=invoices&page=2", "?sort=popular")

DEFAULT_ENDPOINTS: tuple[EndpointProfile, ...] = (
    # The spec's Performance Baselines: p50/p95 somewhat under the targets, share = target RPS.
    EndpointProfile("GET", "/api/public/factory/templates", "factory_templates", 20, 55, 220,
                    queries=_LIST_QUERIES,
                    d1=(D1Query("templates", "read", 12, 42, (20, 120)),)),
    EndpointProfile("GET", "/api/public/factory/templates/:slug", "factory_template_detail", 10, 40, 150,
                    params=TEMPLATE_SLUGS, missing_params=MISSING_TEMPLATE_SLUGS,
                    d1=(D1Query("templates", "read", 6, 20),)),
    EndpointProfile("GET", "/api/public/factory/capabilities", "factory_capabilities", 15, 50, 210,
                    d1=(D1Query("capabilities", "read", 11, 40, (30, 60)),)),
    EndpointProfile("GET", "/api/public/factory/capabilities/free", "factory_capabilities_free", 10, 45, 200,
                    d1=(D1Query("capabilities", "read", 9, 35, (10, 25)),)),
    EndpointProfile("GET", "/api/public/factory/build-specs", "factory_build_specs", 15, 80, 300,
                    queries=("", "", "?status=approved", "?limit=50"), cpu_p50_ms=5,
                    d1=(D1Query("build_specs", "read", 20, 65, (50, 400)),)),
    EndpointProfile("GET", "/api/public/factory/build-specs/:runId", "factory_build_spec_detail", 10, 55, 180,
                    params=BUILD_SPEC_RUN_IDS,
                    d1=(D1Query("build_specs", "read", 9, 30, (2, 4)),)),
    # Other routes of the same Workers.
    EndpointProfile("GET", "/api/health", "health", 1, 4, 15, structured=False, cpu_p50_ms=1),
    EndpointProfile("OPTIONS", "/api/public/factory/templates", "factory_templates", 2, 1, 3, ok_status=204,
                    structured=False, cpu_p50_ms=0.5),
    EndpointProfile("POST", "/api/factory/templates", "factory_template_create", 2, 120, 450,
                    service="planning-machine", ok_status=201, cpu_p50_ms=8,
                    d1=(D1Query("templates", "read", 6, 20),
                        D1Query("templates", "write", 14, 45, (0, 0), (1, 1)),
                        D1Query("audit_log", "write", 5, 18, (0, 0), (1, 1)))),
    EndpointProfile("GET", "/api/factory/templates", "factory_templates_internal", 1, 30, 110,
                    service="planning-machine", queries=("?limit=1", "", "?category=saas"),
                    d1=(D1Query("templates", "read", 10, 38, (1, 120)),)),
)


# -- clients: who sends the requests (headers and request.cf) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    colo: str
    asn: int
    as_organization: str
    country: str
    is_eu: bool
    city: str
    continent: str
    region: str
    region_code: str
    timezone: str
    longitude: str
    latitude: str
    postal_code: str
    metro_code: str | None = None


@dataclass(frozen=True, slots=True)
class _Client:
    weight: float
    ip: str
    user_agent: str
    accept: str
    place: _Place
    rich_cf: bool  # TLS fingerprints, tlsClientAuth and edgeL4 (newer runtimes); all of request.cf can be missing
    http_protocol: str = "HTTP/2"
    origin: str | None = None
    credential: str | None = None  # the redacted header it authenticates with
    tenants: tuple[str, ...] = ()  # empty: none (x-tenant-id absent)


_ASHBURN = _Place("IAD", 701, "Verizon Business", "US", False, "Ashburn", "NA", "Virginia", "VA",
                  "America/New_York", "-77.48749", "39.04372", "20147", "511")
_LONDON = _Place("LHR", 2856, "British Telecommunications PLC", "GB", False, "London", "EU", "England", "ENG",
                 "Europe/London", "-0.12574", "51.50853", "EC1A")
_SAO_PAULO = _Place("GRU", 28573, "Claro NXT Telecomunicacoes Ltda", "BR", False, "São Paulo", "SA",
                    "São Paulo", "SP", "America/Sao_Paulo", "-46.63611", "-23.54750", "01000-000")
_ZURICH = _Place("ZRH", 3303, "Swisscom (Schweiz) AG", "CH", False, "Zürich", "EU", "Zurich", "ZH",
                 "Europe/Zurich", "8.55000", "47.36667", "8001")
_MUNICH = _Place("MUC", 3320, "Deutsche Telekom AG", "DE", True, "München", "EU", "Bavaria", "BY",
                 "Europe/Berlin", "11.57549", "48.13743", "80331")
_FRANKFURT_DC = _Place("FRA", 16509, "Amazon.com, Inc.", "DE", True, "Frankfurt am Main", "EU", "Hesse", "HE",
                       "Europe/Berlin", "8.68417", "50.11552", "60311")
_SAN_JOSE_DC = _Place("SJC", 13335, "Cloudflare, Inc.", "US", False, "San Jose", "NA", "California", "CA",
                      "America/Los_Angeles", "-121.89496", "37.33939", "95113", "807")

_CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/143.0.0.0 Safari/537.36")
_FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:146.0) Gecko/20100101 Firefox/146.0"
_SAFARI_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/18.2 Mobile/15E148 Safari/604.1")
_APP_ORIGIN = "https://app.factory.example.com"

_CLIENTS: tuple[_Client, ...] = (
    _Client(30, "203.0.113.24", _CHROME_MAC, "application/json", _ASHBURN, True, origin=_APP_ORIGIN,
            tenants=("tnt_acme", "default")),
    _Client(18, "198.51.100.77", _FIREFOX_WIN, "application/json", _LONDON, False, origin=_APP_ORIGIN,
            tenants=("tnt_initech",)),
    _Client(8, "203.0.113.91", _SAFARI_IOS, "application/json", _SAO_PAULO, False, origin=_APP_ORIGIN,
            tenants=("tnt_umbrella", "default")),
    _Client(6, "198.51.100.23", _CHROME_MAC, "application/json", _ZURICH, True, origin=_APP_ORIGIN,
            tenants=("tnt_hooli",)),
    _Client(6, "203.0.113.150", _FIREFOX_WIN, "application/json", _MUNICH, False, origin=_APP_ORIGIN,
            tenants=("tnt_stark", "tnt_wayne")),
    _Client(20, "192.0.2.140", "python-httpx/0.28.1", "application/json", _FRANKFURT_DC, False,
            http_protocol="HTTP/1.1", credential="x-api-key", tenants=("tnt_globex",)),
    _Client(8, "192.0.2.17", "curl/8.11.1", "*/*", _ASHBURN, False, http_protocol="HTTP/1.1",
            credential="authorization", tenants=("tnt_wonka", "tnt_acme")),
)
_HEALTH_CHECKER = _Client(1, "192.0.2.200", "Cloudflare-Healthchecks/1.0", "*/*", _SAN_JOSE_DC, False,
                          http_protocol="HTTP/1.1")
_WRITE_CLIENTS = tuple(client for client in _CLIENTS if client.credential is not None)
_TLS_CLIENT_AUTH: Mapping[str, str] = {
    "certPresented": "0", "certVerified": "NONE", "certRevoked": "0", "certIssuerDN": "", "certSubjectDN": "",
    "certIssuerDNRFC2253": "", "certSubjectDNRFC2253": "", "certIssuerDNLegacy": "", "certSubjectDNLegacy": "",
    "certSerial": "", "certIssuerSerial": "", "certSKI": "", "certIssuerSKI": "", "certFingerprintSHA1": "",
    "certFingerprintSHA256": "", "certNotBefore": "", "certNotAfter": "",
}

_HOSTS = {"gateway": "api.factory.example.com", "planning-machine": "planning.internal"}

_OVERLOAD = ("Tail is currently in sampling mode due to the high volume of messages. To prevent messages from "
             "being dropped consider adding filters.")
_OVERLOAD_STOP = "Tail has exited sampling mode and is no longer dropping messages."
_LOG_CAP = ("Log size limit exceeded: More than 256KB of data (across console.log statements, exception, request "
            "metadata and headers) was logged during a single request. Subsequent data for this request will not "
            "be recorded in logs, appear when tailing this Worker's logs, or in Tail Workers.")
_CRONS: Mapping[str, tuple[str, int, str]] = {  # service -> (cron, period, what it does)
    "gateway": ("*/15 * * * *", 15 * MINUTE_MS, "refreshing template cache"),
    "planning-machine": ("0 * * * *", 60 * MINUTE_MS, "expiring stale planning runs"),
}

# What a failed request says: (status, outcome, error code, error message, exception name or None).
_Failure = tuple[int, str, str, str, str | None]
_SERVER_ERRORS: tuple[_Failure, ...] = (
    (500, "ok", "INTERNAL_ERROR", "Failed to serialize template payload", None),
    (500, "ok", "INTERNAL_ERROR", "Unexpected null in build spec sections", None),
    (502, "ok", "UPSTREAM_BAD_RESPONSE", "planning service returned an invalid response", None),
    (503, "ok", "UPSTREAM_UNAVAILABLE", "planning service unavailable", None),
    (500, "exception", "UNHANDLED_EXCEPTION", "Cannot read properties of undefined (reading 'slug')", "TypeError"),
    (500, "exception", "UNHANDLED_EXCEPTION", "Unexpected end of JSON input", "SyntaxError"),
)
_OUTAGE_ERRORS: tuple[_Failure, ...] = (
    (503, "ok", "UPSTREAM_UNAVAILABLE", "planning service unavailable", None),
    (503, "ok", "UPSTREAM_UNAVAILABLE", "planning service unavailable", None),
    (503, "ok", "UPSTREAM_UNAVAILABLE", "circuit open: planning service", None),
    (500, "exception", "UNHANDLED_EXCEPTION", "Network connection lost.", "Error"),
    (504, "ok", "UPSTREAM_TIMEOUT", "planning service timed out after 5000ms", None),
)
_D1_FAILURE_MESSAGE = "D1_ERROR: Network connection lost."
_STACKS = {
    "TypeError": "    at renderTemplate (index.js:1423:31)\n    at async handleFactory (index.js:988:20)\n"
                 "    at async Object.fetch (index.js:1502:14)",
    "SyntaxError": "    at JSON.parse (<anonymous>)\n    at loadBuildSpec (index.js:2210:17)\n"
                   "    at async Object.fetch (index.js:1502:14)",
    "Error": "    at PlanningClient.fetch (index.js:640:11)\n    at async Object.fetch (index.js:1502:14)",
}


# -- generation -----------------------------------------------------------------------------------------------


def _sigma(p50: float, p95: float) -> float:
    return math.log(max(p95, p50 * 1.0001) / p50) / _Z95


def _js_number(value: float) -> int | float:
    """A float as JSON.stringify prints it: integral values without `.0`."""
    return int(value) if value == int(value) else value


def _log(message: list[Any], level: str, t_ms: int) -> dict[str, Any]:
    return {"message": message, "level": level, "timestamp": t_ms}


@dataclass(slots=True)
class _Route:
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
class _Effects:
    latency: float = 1.0
    server_error: float = 0.0
    down: float = 0.0
    not_found: float = 0.0
    d1_failure: float = 0.0


class _Traffic:
    """One generation run: the random stream, the prepared routes, the arrival heap."""

    def __init__(self, seed: int, start_ms: int, minutes: int, requests_per_minute: int,
                 endpoints: Sequence[EndpointProfile], incidents: Sequence[Incident], disorder_ms: int,
                 services: Mapping[str, str], mix: TrafficMix) -> None:
        if minutes < 0 or requests_per_minute < 0 or disorder_ms < 0:
            raise ValueError("minutes, requests_per_minute and disorder_ms must be >= 0")
        self.rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not security
        self.start_ms = start_ms
        self.end_ms = start_ms + minutes * MINUTE_MS
        self.disorder_ms = disorder_ms
        self.services = services
        self.mix = mix
        self.versions = {service: _uuid4(self.rng) for service in sorted(services)}
        chosen = [profile for profile in endpoints if profile.service in services]
        if endpoints and not chosen:
            raise ValueError("no endpoint belongs to the given services")
        total_share = sum(profile.share for profile in chosen) or 1.0
        self.routes = [self._route(profile, requests_per_minute * profile.share / total_share / MINUTE_MS,
                                   incidents) for profile in chosen]
        self.client_cum = list(accumulate(client.weight for client in _CLIENTS))
        self.write_client_cum = list(accumulate(client.weight for client in _WRITE_CLIENTS))
        self.heap: list[tuple[int, int, dict[str, Any]]] = []
        self.seq = 0

    def _route(self, profile: EndpointProfile, rate_per_ms: float, incidents: Sequence[Incident]) -> _Route:
        mine = tuple(incident for incident in incidents if incident.covers(profile.route))
        max_multiplier = math.prod(max(1.0, i.intensity) for i in mine if i.kind == "spike")
        route = _Route(
            profile=profile, script=self.services[profile.service], rate_per_ms=rate_per_ms,
            mu=math.log(profile.p50_ms), sigma=_sigma(profile.p50_ms, profile.p95_ms),
            cpu_mu=math.log(profile.cpu_p50_ms),
            param_cum_weights=list(accumulate(1.0 / (rank + 1) for rank in range(len(profile.params)))),
            incidents=mine, max_multiplier=max_multiplier,
            d1_dists=[(math.log(q.p50_ms), _sigma(q.p50_ms, q.p95_ms)) for q in profile.d1],
        )
        if rate_per_ms > 0:
            route.next_ms = self.start_ms + self.rng.expovariate(rate_per_ms * max_multiplier)
        else:
            route.next_ms = math.inf
        return route

    # -- the stream ---------------------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        block_start = self.start_ms
        while block_start < self.end_ms:
            block_end = min(block_start + MINUTE_MS, self.end_ms)
            self._requests(block_start, block_end)
            self._crons(block_start, block_end)
            self._overloads(block_start, block_end)
            while self.heap and self.heap[0][0] < block_end:  # later blocks arrive at or after block_end
                yield heapq.heappop(self.heap)[2]
            block_start = block_end
        while self.heap:
            yield heapq.heappop(self.heap)[2]

    def _push(self, completed_ms: int, event: dict[str, Any]) -> None:
        delay = self.rng.randrange(self.disorder_ms + 1) if self.disorder_ms else 0
        heapq.heappush(self.heap, (completed_ms + delay, self.seq, event))
        self.seq += 1

    def _requests(self, block_start: int, block_end: int) -> None:
        rng = self.rng
        for route in self.routes:
            rate = route.rate_per_ms * route.max_multiplier
            t = route.next_ms
            while t < block_end:
                t_ms = int(t)
                if route.max_multiplier == 1.0 or rng.random() * route.max_multiplier < self._multiplier(route, t_ms):
                    self._request(route, t_ms)
                t += rng.expovariate(rate)
            route.next_ms = t

    @staticmethod
    def _multiplier(route: _Route, t_ms: int) -> float:
        return math.prod(i.intensity for i in route.incidents if i.kind == "spike" and i.active(t_ms))

    def _effects(self, route: _Route, t_ms: int) -> _Effects:
        profile = route.profile
        mix = self.mix
        effects = _Effects(server_error=mix.server_error_rate)
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

    # -- one request --------------------------------------------------------------------------------------

    def _request(self, route: _Route, start_ms: int) -> None:
        """One request starting at `start_ms`: what happens to it, and the tail event it leaves."""
        rng = self.rng
        profile = route.profile
        effects = self._effects(route, start_ms) if route.incidents else self._baseline(profile)
        fate = self._fate(profile, effects)
        param = self._param(route, fate)
        path = _fill(profile.route, param)
        query = rng.choice(profile.queries) if fate not in ("not_found", "down") else ""
        client = self._client(profile)
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
            exceptions.append({"stack": _STACKS[failure[4]], "name": failure[4], "message": failure[3],
                               "timestamp": logged_ms + 1})
        response: int | None = status
        if runtime == "canceled":
            outcome, response, wall = "canceled", None, wall + rng.randrange(200, 3000)
            logs.append(_log([f"{profile.method} {path}: client disconnected"], "log", start_ms + 1))
        elif runtime == "exceededCpu":
            outcome, response, cpu = "exceededCpu", 503, 50 + rng.randrange(3)
            exceptions.append({"stack": "    at renderPreview (index.js:2210:17)\n"
                                        "    at async Object.fetch (index.js:1502:14)",
                               "name": "Error", "message": "Worker exceeded CPU time limit.",
                               "timestamp": logged_ms})
            logs.append(_log([f"rendering {path} ({rng.randrange(800, 4000)} nodes)"], "log", start_ms + 1))
        elif runtime == "truncated":
            logs.extend(self._oversized_logs(start_ms, logged_ms))
            logs.append(_log([_LOG_CAP], "warn", logged_ms))
        elif structured:
            logs.append(self._factory_log(profile, fate, status, failure, param, tenant, path + query, duration,
                                          d1, logged_ms))
        elif profile.route == "/api/health":
            logs.append(_log(["health check ok - d1 reachable, kv reachable"], "log", logged_ms))
        elif profile.structured and rng.random() < 0.5:  # an unstructured line instead of the FactoryLog
            logs.append(_log([f"{profile.method} {path}{query} -> {status} in {duration}ms"], "log", logged_ms))

        event: dict[str, Any] = {
            "wallTime": wall, "cpuTime": cpu, "truncated": runtime == "truncated", "executionModel": "stateless",
            "outcome": outcome, "scriptVersion": {"id": self.versions[profile.service]},
            "scriptName": route.script, "diagnosticsChannelEvents": [], "exceptions": exceptions, "logs": logs,
            "eventTimestamp": start_ms,
            "event": self._fetch_event(profile, client, tenant, path + query, response),
        }
        self._push(start_ms + wall, event)

    def _fate(self, profile: EndpointProfile, effects: _Effects) -> str:
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

    def _param(self, route: _Route, fate: str) -> str | None:
        """The value of the route's `:param` segment: a missing one for a 404."""
        profile = route.profile
        if ":" not in profile.route:
            return None
        if fate == "not_found" and profile.missing_params:
            return self.rng.choice(profile.missing_params)
        if fate == "not_found" or not profile.params:
            return _uuid4(self.rng)
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

    def _factory_log(self, profile: EndpointProfile, fate: str, status: int, failure: _Failure | None,
                     param: str | None, tenant: str | None, path: str, duration_ms: int, d1: list[dict[str, Any]],
                     logged_ms: int) -> dict[str, Any]:
        """The log entry holding the app's FactoryLog, as `console.log(JSON.stringify(log))` leaves it."""
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 or fate == "d1_retried" else "INFO"
        factory_log: dict[str, Any] = {
            "timestamp": ms_to_iso(logged_ms), "level": level, "service": profile.service,
            "endpoint": profile.log_endpoint, "request_id": _uuid4(self.rng), "tenant_id": tenant or "default",
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
        return _log([orjson.dumps(factory_log).decode()], js_level, logged_ms)

    def _baseline(self, profile: EndpointProfile) -> _Effects:
        not_found = self.mix.not_found_rate if profile.structured and profile.method == "GET" else 0.0
        return _Effects(server_error=self.mix.server_error_rate, not_found=not_found)

    def _work(self, route: _Route, fate: str,
              latency: float) -> tuple[list[dict[str, Any]], float, int, _Failure | None]:
        """The D1 queries made, their total time, the status, and the failure (if any)."""
        rng = self.rng
        profile = route.profile
        failure: _Failure | None = None
        if fate == "error":
            failure = rng.choice(_SERVER_ERRORS)
        elif fate == "down":
            failure = rng.choice(_OUTAGE_ERRORS)
        elif fate == "d1_failed":
            failure = (503, "ok", "D1_CONNECTION_FAILED", _D1_FAILURE_MESSAGE, None)
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

    def _client(self, profile: EndpointProfile) -> _Client:
        if profile.route == "/api/health":
            return _HEALTH_CHECKER
        if profile.method in ("POST", "PUT", "PATCH", "DELETE"):
            return self.rng.choices(_WRITE_CLIENTS, cum_weights=self.write_client_cum)[0]
        return self.rng.choices(_CLIENTS, cum_weights=self.client_cum)[0]

    def _fetch_event(self, profile: EndpointProfile, client: _Client, tenant: str | None, path: str,
                     status: int | None) -> dict[str, Any]:
        rng = self.rng
        host = _HOSTS.get(profile.service, f"{profile.service}.example.com")
        headers = {
            "accept": client.accept, "accept-encoding": "gzip, br", "cf-connecting-ip": client.ip,
            "cf-ipcountry": client.place.country, "cf-ray": f"{rng.getrandbits(64):016x}",
            "cf-visitor": '{"scheme":"https"}', "connection": "Keep-Alive", "host": host,
            "user-agent": client.user_agent, "x-forwarded-proto": "https", "x-real-ip": client.ip,
        }
        if client.origin is not None:
            headers["origin"] = client.origin
        if client.credential is not None:
            headers[client.credential] = "REDACTED"
        if tenant is not None:
            headers["x-tenant-id"] = tenant
        if profile.method == "OPTIONS":
            headers["access-control-request-method"] = "GET"
            headers["access-control-request-headers"] = "x-tenant-id"
        elif profile.method == "POST":
            headers["content-type"] = "application/json"
            headers["content-length"] = str(rng.randrange(180, 2400))
        request: dict[str, Any] = {"url": f"https://{host}{path}", "method": profile.method,
                                   "headers": dict(sorted(headers.items()))}
        if profile.service == "gateway" and self.mix.request_cf != "none":  # planning-machine: a service binding
            request["cf"] = self._cf(client)
        event: dict[str, Any] = {"request": request}
        if status is not None:
            event["response"] = {"status": status}
        return event

    def _cf(self, client: _Client) -> dict[str, Any]:
        rng = self.rng
        place = client.place
        cf: dict[str, Any] = {
            "httpProtocol": client.http_protocol, "clientAcceptEncoding": "gzip, deflate, br, zstd",
            "requestPriority": "", "edgeRequestKeepAliveStatus": 1, "requestHeaderNames": {},
            "clientTcpRtt": rng.randrange(3, 120), "colo": place.colo, "asn": place.asn,
            "asOrganization": place.as_organization, "country": place.country, "isEUCountry": place.is_eu,
            "city": place.city, "continent": place.continent, "region": place.region,
            "regionCode": place.region_code, "timezone": place.timezone, "longitude": place.longitude,
            "latitude": place.latitude, "postalCode": place.postal_code,
        }
        if place.metro_code is not None:
            cf["metroCode"] = place.metro_code
        cf["tlsVersion"] = "TLSv1.3"
        cf["tlsCipher"] = "AEAD-AES128-GCM-SHA256"
        if client.rich_cf and self.mix.request_cf == "per_client":
            cf["tlsClientRandom"] = base64.b64encode(rng.randbytes(32)).decode()
            cf["tlsClientCiphersSha1"] = "Is6jizD50MfU/oEcr1ILzN9NN38="
            cf["tlsClientExtensionsSha1"] = "jc53jwp9Oi/fMw0qEIzxCGijhIo="
            cf["tlsClientExtensionsSha1Le"] = "tBVAwmUvLPcvgY3CUVgUHETUEOA="
            cf["tlsClientHelloLength"] = "1754"
            cf["tlsClientAuth"] = dict(_TLS_CLIENT_AUTH)
            cf["verifiedBotCategory"] = ""
            cf["edgeL4"] = {"deliveryRate": rng.randrange(200_000, 8_000_000)}
        return cf

    def _oversized_logs(self, start_ms: int, logged_ms: int) -> list[dict[str, Any]]:
        """A bulk import that logs its rows until the runtime's 256 KB cap cuts the logs off."""
        rng = self.rng
        batch = f"imp_{rng.randrange(10**6):06d}"
        rows = ", ".join(f"row {i}: sku=FX-{10000 + 37 * i} qty={rng.randrange(1, 50)} status=ok"
                         for i in range(1, 120))
        return [_log(["import: received batch", batch, "rows=", rng.randrange(1000, 9000)], "log", start_ms + 5),
                _log([f"import: first page of parsed rows -> {rows}"], "log", (start_ms + logged_ms) // 2)]

    # -- non-request events -------------------------------------------------------------------------------

    def _non_request(self, service: str, start_ms: int, wall: int, cpu: int, logs: list[dict[str, Any]],
                     event: dict[str, Any]) -> dict[str, Any]:
        return {
            "wallTime": wall, "cpuTime": cpu, "truncated": False, "executionModel": "stateless", "outcome": "ok",
            "scriptVersion": {"id": self.versions[service]}, "scriptName": self.services[service],
            "diagnosticsChannelEvents": [], "exceptions": [], "logs": logs, "eventTimestamp": start_ms,
            "event": event,
        }

    def _crons(self, block_start: int, block_end: int) -> None:
        if not self.mix.crons:
            return
        rng = self.rng
        for service in sorted(self.services):
            if service not in _CRONS:
                continue
            cron, period, task = _CRONS[service]
            fire = -(-block_start // period) * period  # the first multiple of the period at or after block_start
            while fire < block_end:
                start = fire + rng.randrange(15, 60)
                wall = rng.randrange(300, 1500)
                logs = [_log([f"[cron] {task}"], "log", start + 1),
                        _log(["[cron] done:", rng.randrange(5, 80), "items in", wall - 6, "ms"], "info",
                             start + wall - 5)]
                self._push(start + wall, self._non_request(service, start, wall, rng.randrange(4, 30), logs,
                                                           {"cron": cron, "scheduledTime": fire}))
                fire += period

    def _overloads(self, block_start: int, block_end: int) -> None:
        rng = self.rng
        chance = self.mix.overloads_per_hour * (block_end - block_start) / (60 * MINUTE_MS)
        if not self.services or rng.random() >= chance:
            return
        service = sorted(self.services)[0]
        begin = rng.randrange(block_start, block_end)
        stop = begin + rng.randrange(10_000, 60_000)
        for at, kind, message in ((begin, "overload", _OVERLOAD), (stop, "overload-stop", _OVERLOAD_STOP)):
            self._push(at, self._non_request(service, at, 0, 0, [], {"type": kind, "message": message}))


def _fill(route: str, param: str | None) -> str:
    if param is None:
        return route
    return "/".join(param if segment.startswith(":") else segment for segment in route.split("/"))


def generate_events(seed: int, start_ms: int, minutes: int, requests_per_minute: int = 600,
                    endpoints: Sequence[EndpointProfile] = DEFAULT_ENDPOINTS, incidents: Sequence[Incident] = (),
                    disorder_ms: int = 0, services: Mapping[str, str] = DEFAULT_SERVICES,
                    mix: TrafficMix = DEFAULT_MIX) -> Iterator[dict[str, Any]]:
    """Tail events of `minutes` of traffic from `start_ms`, in arrival order.

    Requests start as a Poisson process of `requests_per_minute` on average, split over `endpoints` by share
    (`spike` incidents multiply an endpoint's rate). Each arrives at `eventTimestamp + wallTime`, delayed by a
    uniform 0..`disorder_ms` more. `services` maps the FactoryLog `service` to the Worker's script name
    (`scriptName`); endpoints of services not in it are left out (a real capture tails one or more Workers).
    Streams: holds about one minute of events at a time.
    """
    traffic = _Traffic(seed, start_ms, minutes, requests_per_minute, endpoints, incidents, disorder_ms, services,
                       mix)
    return traffic.events()


def is_request_event(event: Mapping[str, Any]) -> bool:
    """Whether a tail event is an HTTP request (one record in tailwatch)."""
    inner = event.get("event")
    return isinstance(inner, dict) and isinstance(inner.get("request"), dict)


# -- printing -------------------------------------------------------------------------------------------------


def _indent4(pretty2: bytes) -> bytes:
    """Double the indentation of 2-space pretty JSON. Strings hold no raw newline, so every `\\n` followed by
    spaces is indentation; a placeholder byte (never raw in JSON) marks levels already counted."""
    out = pretty2.replace(b"\n  ", b"\n\x01")
    while b"\x01  " in out:
        out = out.replace(b"\x01  ", b"\x01\x01")
    return out.replace(b"\x01", b"    ")


def render_capture(events: Iterable[Mapping[str, Any]], layout: Layout = "pretty4") -> Iterator[bytes]:
    """The bytes wrangler prints for each event, one `bytes` per event.

    - `pretty4`: `console.log(JSON.stringify(event, null, 4))` — wrangler >= 4.24.4;
    - `pretty2`: the same with a 2-space indent — older wrangler;
    - `compact`: `JSON.stringify(event)` with nothing between objects;
    - `jsonl`: one compact object per line.

    Byte for byte: `"key": value`, no trailing spaces, `[]`/`{}` for empty containers, non-ASCII as is (orjson's
    output equals JSON.stringify's for these events, whose numbers are integers or short decimals).
    """
    if layout not in ("pretty4", "pretty2", "compact", "jsonl"):
        raise ValueError(f"unknown layout: {layout!r}")
    dumps = orjson.dumps
    for event in events:
        if layout == "pretty4":
            yield _indent4(dumps(event, option=orjson.OPT_INDENT_2)) + b"\n"
        elif layout == "pretty2":
            yield dumps(event, option=orjson.OPT_INDENT_2) + b"\n"
        elif layout == "compact":
            yield dumps(event)
        else:
            yield dumps(event) + b"\n"


# -- the demo -------------------------------------------------------------------------------------------------

DEMO_START_MS = 1_767_700_800_000  # 2026-01-06T12:00:00Z
DEMO_MINUTES = 90
DEMO_REQUESTS_PER_MINUTE = 240
DEMO_DISORDER_MS = 3_000
DEMO_MIX = TrafficMix(not_found_rate=0.01)  # quiet baseline: small endpoints' 1-minute error rates stay < 5 %


def demo_incidents(start_ms: int = DEMO_START_MS) -> tuple[Incident, ...]:
    """The demo's incidents, from `start_ms` (see `demo_events`)."""

    def at(minute: int) -> int:
        return start_ms + minute * MINUTE_MS

    return (
        Incident("not_found", "/api/public/factory/templates/:slug", at(5), at(45), 0.40),
        Incident("errors", "/api/public/factory/build-specs", at(10), at(28), 0.20),
        Incident("slow", "/api/public/factory/capabilities", at(30), at(52), 12.0),
        Incident("spike", "/api/public/factory/capabilities/free", at(55), at(64), 48.0),
        Incident("down", "/api/public/factory/build-specs/:runId", at(66), at(73), 0.85),
        Incident("d1_failures", "/api/public/factory/templates", at(76), at(81), 0.40),
    )


DEMO_INCIDENTS = demo_incidents()


def demo_events(seed: int = 1, start_ms: int = DEMO_START_MS) -> Iterator[dict[str, Any]]:
    """A 90-minute capture at 240 requests/min (about 33k events, 11.8k of them from the traffic spike; 110 MB in
    the 4-space layout), deliveries up to 3 s out of order, baseline 404s at 1 %, in which these spec rules should
    fire and resolve.

    Minutes from `start_ms`, per endpoint group (`gateway`, route), with 1-minute panes and each rule's `FOR`.
    "Fires" is the incident's start plus the `FOR`; "resolves" is the end of the first clear pane after it ends.
    Checked with `tailwatch replay` and the default rules over seeds 1-8: every firing and resolution below, at
    these minutes (the 404 spike fired 10 minutes late in two seeds: one pane with few 404s resets its 30-minute
    `for`):

    - 5–45, `/api/public/factory/templates/:slug`, not_found 40 %: **factory-404-spike** (> 10 % for 30 min)
      fires ≈ 35, resolves ≈ 46. The spec's error rate counts 4xx, so **factory-high-error-rate** (> 5 % for
      10 min) fires there too, ≈ 15 → 46.
    - 10–28, `/api/public/factory/build-specs`, errors +20 % 5xx: **factory-high-error-rate** ≈ 20 → 29.
    - 30–52, `/api/public/factory/capabilities`, slow ×12 (p50 ≈ 0.6 s, p95 ≈ 2.5 s): **factory-slow-responses**
      (p95 > 1000 ms for 15 min) ≈ 45 → 53.
    - 55–64, `/api/public/factory/capabilities/free`, spike ×48 (≈ 1,340 req/min): **factory-traffic-spike**
      (> 1000 per minute for 5 min) ≈ 60 → 65. (Not on `/templates`, whose target of 20 RPS is 1,200/min: the
      default rules give it a higher threshold.)
    - 66–73, `/api/public/factory/build-specs/:runId`, down 85 %: **factory-service-down** (success rate < 50 % for
      5 min) ≈ 71 → 74.
    - 76–81, `/api/public/factory/templates`, d1_failures 40 % (≈ 22 per minute; half of those requests answer
      503): **d1-connection-failures** (> 10 for 2 min) ≈ 78 → 82.

    Minutes 82–90 are quiet. Expected *not* to fire: factory-high-error-rate on `:runId` (its outage lasts 7 min
    < 10) and on `/templates` (the D1 incident's 503s last 5 min); factory-service-down anywhere else.
    Requests that log no FactoryLog (CORS preflights, ~2 % of the rest) are grouped by tailwatch under the Worker's
    script name (`foundation-gateway-production`): sparse groups of 0-10 records a minute, mostly below the rules'
    `min_requests`.
    """
    return generate_events(seed, start_ms, DEMO_MINUTES, DEMO_REQUESTS_PER_MINUTE, incidents=demo_incidents(start_ms),
                           disorder_ms=DEMO_DISORDER_MS, mix=DEMO_MIX)
