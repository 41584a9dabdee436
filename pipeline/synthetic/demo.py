"""The demo capture: 90 minutes of traffic in which several of the spec's alert rules fire and resolve."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.synthetic.profiles import MINUTE_MS, Incident, TrafficMix
from pipeline.synthetic.traffic import generate_events

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
