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

Modules: `profiles` (endpoint profiles, incidents, the traffic mix), `factory_api` (the default services and
endpoints), `clients` (who sends requests: headers, `request.cf`), `failures` (what failed requests say),
`request` (one request's fate and tail event), `traffic` (the stream), `capture` (printing), `demo` (the demo
capture), `draws` (shared random draws). Everything public is re-exported here.
"""

from __future__ import annotations

from pipeline.synthetic.capture import Layout, render_capture
from pipeline.synthetic.demo import (
    DEMO_DISORDER_MS,
    DEMO_INCIDENTS,
    DEMO_MINUTES,
    DEMO_MIX,
    DEMO_REQUESTS_PER_MINUTE,
    DEMO_START_MS,
    demo_events,
    demo_incidents,
)
from pipeline.synthetic.factory_api import (
    BUILD_SPEC_RUN_IDS,
    DEFAULT_ENDPOINTS,
    DEFAULT_SERVICES,
    MISSING_TEMPLATE_SLUGS,
    TEMPLATE_SLUGS,
)
from pipeline.synthetic.profiles import (
    DEFAULT_MIX,
    INCIDENT_KINDS,
    MINUTE_MS,
    D1Query,
    EndpointProfile,
    Incident,
    IncidentKind,
    TrafficMix,
)
from pipeline.synthetic.traffic import generate_events, is_request_event

__all__ = [
    "BUILD_SPEC_RUN_IDS",
    "DEFAULT_ENDPOINTS",
    "DEFAULT_MIX",
    "DEFAULT_SERVICES",
    "DEMO_DISORDER_MS",
    "DEMO_INCIDENTS",
    "DEMO_MINUTES",
    "DEMO_MIX",
    "DEMO_REQUESTS_PER_MINUTE",
    "DEMO_START_MS",
    "INCIDENT_KINDS",
    "MINUTE_MS",
    "MISSING_TEMPLATE_SLUGS",
    "TEMPLATE_SLUGS",
    "D1Query",
    "EndpointProfile",
    "Incident",
    "IncidentKind",
    "Layout",
    "TrafficMix",
    "demo_events",
    "demo_incidents",
    "generate_events",
    "is_request_event",
    "render_capture",
]
