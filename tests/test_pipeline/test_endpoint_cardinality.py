"""Months of internet traffic in a few seconds: 100,000 distinct scanned paths (mostly 404, some 401/403) next to
the spec's endpoints, through the endpoint catalog, the replay core (panes, watermarks) and the default rules.
The catalog, the panes and the partition checkpoint stay bounded, the spec's endpoints keep their own keys and
alerts, and nothing on `<unmatched>`/`<overflow>` is delivered to PagerDuty or e-mail."""

from __future__ import annotations

import gc
import os
import random
import string
from typing import Any

import orjson

from agents.rules_files import load_rules
from pipeline.endpoint_catalog import DEFAULT_MAX_ENDPOINTS, FOLDED_ENDPOINTS, OVERFLOW, UNMATCHED, EndpointCatalog
from pipeline.notify.routing import Router
from pipeline.replay import Replay
from pipeline.routes import RouteTable
from pipeline.rules.engine import RuleEngine
from schemas.alerts import AlertEvent
from tests.test_pipeline.records import BASE_MS, record

MINUTES = 100
SCANS_PER_MINUTE = 1_000  # 100,000 in all, each a new path
SPEC_ROUTES = ("/api/public/factory/templates", "/api/public/factory/templates/modern-saas",
               "/api/public/factory/capabilities", "/api/public/factory/capabilities/free",
               "/api/public/factory/build-specs", "/api/public/factory/build-specs/run_2026_01_06_001")
DOWN = "/api/public/factory/capabilities/free"  # 503s in minutes 60-69
CHANNELS = {"pagerduty": True, "slack-critical": True, "slack-alerts": True, "slack-monitoring": True,
            "email": True}


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9)))  # letters only: never an `:id`


def minute_of_traffic(rng: random.Random, routes: RouteTable, minute: int) -> list[dict[str, Any]]:
    """One minute: 1000 scans of new paths (90 % 404, 5 % 401, 5 % 403), 20 requests on each spec route and
    /api/health; in arrival order."""
    start = BASE_MS + minute * 60_000
    records = []
    for i in range(SCANS_PER_MINUTE):
        path = "/" + "/".join(_word(rng) for _ in range(rng.randint(1, 3)))
        roll = rng.random()
        status = 404 if roll < 0.9 else (401 if roll < 0.95 else 403)
        records.append(record(start + i * 60, routes.endpoint(path, None), status, path=path, service="factory-api"))
    for route in (*SPEC_ROUTES, "/api/health"):
        for i in range(20):
            status = 503 if route == DOWN and 60 <= minute < 70 else 200
            records.append(record(start + i * 3000 + 7, routes.endpoint(route, None), status, path=route,
                                  service="factory-api"))
    records.sort(key=lambda r: r["event_time_ms"])
    return records


def test_100k_distinct_scanned_paths_keep_catalog_panes_and_checkpoint_bounded() -> None:
    rng = random.Random(20260106)
    routes = RouteTable()
    catalog = EndpointCatalog(routes.templates)
    rules = load_rules()
    replay = Replay(lateness_ms=10_000, engine=RuleEngine(rules.compiled, rules.rule_file, rules.sha256))
    raw_keys: set[str] = set()
    alerts: list[dict[str, Any]] = []
    peak = {"groups": 0, "panes": 0, "checkpoint": 0, "catalog": 0}
    rss_mb: list[float] = []
    by_minute = []
    for minute in range(MINUTES):
        batch = minute_of_traffic(rng, routes, minute)
        raw_keys.update(r["endpoint"] for r in batch)
        catalog.assign(batch)
        alerts += replay.step("capture", batch).alerts
        store = replay.store
        groups = {(s, e) for s, e, _ in store.open} | set(store.history)
        size = len(orjson.dumps(replay.operator.snapshot()))  # the partition checkpoint
        sample = {"groups": len(groups), "panes": store.panes_held(), "checkpoint": size,
                  "catalog": catalog.keys_held()}
        peak = {name: max(peak[name], sample[name]) for name in peak}
        by_minute.append(sample)
        if minute in (40, MINUTES - 1):
            gc.collect()
            rss_mb.append(resident_mb())
    alerts += replay.step_end("capture").alerts

    assert len(raw_keys) > 99_000  # what the endpoints would have been without the catalog
    learned = catalog.endpoints("factory-api")
    assert len(learned) == DEFAULT_MAX_ENDPOINTS + len(routes.templates)  # the cap, and the six spec routes
    assert set(routes.templates) | {"/api/health"} <= learned  # the spec's endpoints keep their own keys
    assert catalog.stats.folded[UNMATCHED] > 89_000 and catalog.stats.folded[OVERFLOW] > 7_000
    assert catalog.stats.refused_keys == DEFAULT_MAX_ENDPOINTS  # counted exactly up to the cap, then saturated
    # Bounds: the groups a partition holds never pass the cap + templates + <unmatched>, <overflow>; the catalog
    # holds the learned keys and at most as many refused-key hashes; the checkpoint (open panes with their raw
    # values, alert states, D1 rows per group today) stays flat once the cap is reached (minute 20 here). Measured:
    # 2008 groups, 2528 panes, 141 kB at most, 120 kB from minute 30 on; without the catalog the same traffic held
    # 61,000 groups and a 5.6 MB checkpoint at minute 100, growing by 53 kB a minute.
    assert peak["groups"] <= DEFAULT_MAX_ENDPOINTS + len(routes.templates) + 2
    assert peak["catalog"] <= 2 * DEFAULT_MAX_ENDPOINTS + len(routes.templates)
    assert peak["panes"] <= DEFAULT_MAX_ENDPOINTS + 10 * 62, peak  # learned keys seen once; 10 busy keys × an hour
    assert peak["checkpoint"] <= 150_000, peak
    late = [sample["checkpoint"] for sample in by_minute[30:]]
    assert max(late) <= 1.1 * min(late), (min(late), max(late))
    # Memory: the 60,000 scanned paths after minute 40 add little (measured +6 MB; without the catalog +68 MB, from
    # 136 to 203 MB). Run for 300 minutes (300,000 paths), a process stayed at 56 MB from minute 150 on.
    assert rss_mb[1] - rss_mb[0] < 16, rss_mb

    # Alerts: the spec's endpoint that went down pages; scanners fire only the Slack rule on <unmatched>.
    firing = {(a["rule"], a["labels"]["endpoint"]) for a in alerts if a["change"] == "firing"}
    assert ("factory-service-down", DOWN) in firing
    assert {endpoint for _, endpoint in firing} == {DOWN, UNMATCHED}, firing
    router = Router(CHANNELS)
    delivered = [(d.channel, d.alert.labels["endpoint"]) for a in alerts
                 for d in router.route(AlertEvent.model_validate(a)).deliveries]
    assert ("pagerduty", DOWN) in delivered
    assert {channel for channel, endpoint in delivered if endpoint in FOLDED_ENDPOINTS} == {"slack-monitoring"}
