"""The synthetic traffic stream: requests as a Poisson process per endpoint, crons and tail overload notices,
yielded in arrival order.

An event arrives when its invocation finishes (`eventTimestamp` + `wallTime`), plus a delivery delay of up to
`disorder_ms`; events wait in a heap about one minute at a time.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from itertools import accumulate
from typing import Any

from pipeline.synthetic.draws import lognormal_sigma, uuid4
from pipeline.synthetic.factory_api import DEFAULT_ENDPOINTS, DEFAULT_SERVICES
from pipeline.synthetic.profiles import DEFAULT_MIX, MINUTE_MS, EndpointProfile, Incident, TrafficMix
from pipeline.synthetic.request import RequestMaker, Route, log_entry

_OVERLOAD = ("Tail is currently in sampling mode due to the high volume of messages. To prevent messages from "
             "being dropped consider adding filters.")
_OVERLOAD_STOP = "Tail has exited sampling mode and is no longer dropping messages."
_CRONS: Mapping[str, tuple[str, int, str]] = {  # service -> (cron, period, what it does)
    "gateway": ("*/15 * * * *", 15 * MINUTE_MS, "refreshing template cache"),
    "planning-machine": ("0 * * * *", 60 * MINUTE_MS, "expiring stale planning runs"),
}


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
        self.versions = {service: uuid4(self.rng) for service in sorted(services)}
        chosen = [profile for profile in endpoints if profile.service in services]
        if endpoints and not chosen:
            raise ValueError("no endpoint belongs to the given services")
        total_share = sum(profile.share for profile in chosen) or 1.0
        self.routes = [self._route(profile, requests_per_minute * profile.share / total_share / MINUTE_MS,
                                   incidents) for profile in chosen]
        self.requests = RequestMaker(self.rng, mix, self.versions)
        self.heap: list[tuple[int, int, dict[str, Any]]] = []
        self.seq = 0

    def _route(self, profile: EndpointProfile, rate_per_ms: float, incidents: Sequence[Incident]) -> Route:
        mine = tuple(incident for incident in incidents if incident.covers(profile.route))
        max_multiplier = math.prod(max(1.0, i.intensity) for i in mine if i.kind == "spike")
        route = Route(
            profile=profile, script=self.services[profile.service], rate_per_ms=rate_per_ms,
            mu=math.log(profile.p50_ms), sigma=lognormal_sigma(profile.p50_ms, profile.p95_ms),
            cpu_mu=math.log(profile.cpu_p50_ms),
            param_cum_weights=list(accumulate(1.0 / (rank + 1) for rank in range(len(profile.params)))),
            incidents=mine, max_multiplier=max_multiplier,
            d1_dists=[(math.log(q.p50_ms), lognormal_sigma(q.p50_ms, q.p95_ms)) for q in profile.d1],
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
                    self._push(*self.requests.event(route, t_ms))
                t += rng.expovariate(rate)
            route.next_ms = t

    @staticmethod
    def _multiplier(route: Route, t_ms: int) -> float:
        return math.prod(i.intensity for i in route.incidents if i.kind == "spike" and i.active(t_ms))

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
                logs = [log_entry([f"[cron] {task}"], "log", start + 1),
                        log_entry(["[cron] done:", rng.randrange(5, 80), "items in", wall - 6, "ms"], "info",
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
