"""The endpoint catalog: which keys stay their own endpoint (templates, learned from a non-404), what folds into
`<unmatched>` and `<overflow>`, and the caps that bound it."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from pipeline.endpoint_catalog import MAX_KEY_CHARS, OVERFLOW, UNMATCHED, EndpointCatalog
from pipeline.log_columns import from_records
from pipeline.parsing import LogParser
from pipeline.routes import RouteTable
from tests.test_pipeline.records import BASE_MS, record

TEMPLATE = "/api/public/factory/templates/:slug"


def keys(catalog: EndpointCatalog, requests: list[tuple[str, int | None]], service: str = "svc") -> list[str]:
    records = [record(BASE_MS + i, endpoint, status, service=service) for i, (endpoint, status) in enumerate(requests)]
    catalog.assign(records)
    return [r["endpoint"] for r in records]


def test_templates_and_learned_keys_stay_404s_of_unknown_keys_fold() -> None:
    catalog = EndpointCatalog(RouteTable().templates)
    got = keys(catalog, [
        ("/wp-login.php", 404), ("/.env", 404),            # scanners
        (TEMPLATE, 404),                                    # a template: its own endpoint even on 404s
        ("/api/y", 404), ("/api/y", 200), ("/api/y", 404),  # learned at its first non-404; later 404s stay
        ("/api/crash", None),                               # no status (the Worker threw): learned as well
        ("/api/crash", 404), ("/admin", 401), ("/admin", 404),
    ])
    assert got == [UNMATCHED, UNMATCHED, TEMPLATE, UNMATCHED, "/api/y", "/api/y", "/api/crash", "/api/crash",
                   "/admin", "/admin"]
    assert catalog.stats.folded == {UNMATCHED: 3}
    assert catalog.endpoints("svc") == {TEMPLATE, "/api/y", "/api/crash", "/admin"}
    assert keys(catalog, [("/api/y", 404)], service="other") == [UNMATCHED]  # learned per service
    assert catalog.take_notices() == []


def test_the_cap_folds_new_keys_into_overflow_counts_them_and_says_so_once() -> None:
    catalog = EndpointCatalog({TEMPLATE}, max_endpoints=3)
    got = keys(catalog, [("/a", 200), ("/b", 200), ("/c", 500), ("/d", 200), ("/e", 403), ("/d", 200),
                         (TEMPLATE, 200),  # templates do not count against the cap
                         ("/a", 404), ("/f", 404), ("/g", 200)])
    assert got == ["/a", "/b", "/c", OVERFLOW, OVERFLOW, OVERFLOW, TEMPLATE, "/a", UNMATCHED, OVERFLOW]
    assert catalog.stats.folded == {OVERFLOW: 4, UNMATCHED: 1}
    assert catalog.stats.refused_keys == 3  # /d, /e, /g: distinct
    notices = catalog.take_notices()
    assert len(notices) == 1 and "'svc' reached its endpoint cap (3 keys" in notices[0]
    keys(catalog, [("/h", 200)])
    assert catalog.take_notices() == []  # once per service
    keys(catalog, [("/a", 200), ("/b", 200), ("/c", 200), ("/d", 200)], service="other")
    assert len(catalog.take_notices()) == 1


def test_a_key_too_long_to_keep_goes_to_overflow() -> None:
    catalog = EndpointCatalog()
    long_key = "/" + "a" * MAX_KEY_CHARS
    assert keys(catalog, [(long_key, 200), (long_key[:MAX_KEY_CHARS], 200)]) == [OVERFLOW, long_key[:MAX_KEY_CHARS]]


def test_services_past_the_bound_become_the_overflow_service() -> None:
    catalog = EndpointCatalog(max_services=2)
    records = [record(BASE_MS, "/a", 200, service=name) for name in ("s1", "s2", "s3", "s4", "s1")]
    catalog.assign(records)
    assert [(r["service"], r["endpoint"]) for r in records] == [
        ("s1", "/a"), ("s2", "/a"), (OVERFLOW, OVERFLOW), (OVERFLOW, OVERFLOW), ("s1", "/a")]
    assert catalog.stats.services_refused == 2
    assert len(catalog.take_notices()) == 1


def test_decisions_depend_on_order_only_not_on_batching() -> None:
    requests = [(f"/p{i % 7}", 404 if i % 3 else 200) for i in range(200)]
    whole = keys(EndpointCatalog(max_endpoints=4), requests)
    catalog = EndpointCatalog(max_endpoints=4)
    records = [record(BASE_MS + i, endpoint, status) for i, (endpoint, status) in enumerate(requests)]
    for start in range(0, len(records), 13):  # batches of 13, the second half given as a start index
        batch = records[start:start + 13]
        catalog.assign(batch[:5])
        catalog.assign(batch, 5)
    assert [r["endpoint"] for r in records] == whole
    assert len(set(whole)) == 6  # 4 learned, <unmatched>, <overflow>


@pytest.mark.parametrize(("max_endpoints", "max_services"), [(0, 1), (1, 0)])
def test_caps_must_be_positive(max_endpoints: int, max_services: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EndpointCatalog(max_endpoints=max_endpoints, max_services=max_services)


def scanner_event(t_ms: int, path: str, status: int) -> dict[str, Any]:
    return {"outcome": "ok", "scriptName": "factory-api", "eventTimestamp": t_ms, "exceptions": [], "logs": [],
            "event": {"request": {"url": f"https://api.example.com{path}", "method": "GET", "headers": {}},
                      "response": {"status": status}}}


def test_the_parser_applies_the_extractors_catalog() -> None:
    events = [scanner_event(BASE_MS, "/wp-login.php", 404),
              scanner_event(BASE_MS + 1, "/api/public/factory/templates/x", 404),
              scanner_event(BASE_MS + 2, "/api/z", 200), scanner_event(BASE_MS + 3, "/api/z", 404)]
    data = b"".join(orjson.dumps(event, option=orjson.OPT_INDENT_2) + b"\n" for event in events)
    parser = LogParser("capture.json")
    records = parser.feed(data).records + parser.finish().records
    assert [r["endpoint"] for r in records] == [UNMATCHED, TEMPLATE, "/api/z", "/api/z"]
    assert records[0]["path"] == "/wp-login.php"  # the record keeps its path
    unassigned = LogParser("capture.json", assign_endpoints=False)
    records = unassigned.feed(data).records + unassigned.finish().records
    assert records[0]["endpoint"] == "/wp-login.php"


@pytest.mark.parametrize("seed", range(3))
def test_columns_get_the_decisions_records_get(seed: int) -> None:
    """`assign_columns` (a split capture's second half) decides as `assign` does, record by record in order, with
    the caps and the service bound, mixed with record batches on the same catalog."""
    rng = random.Random(seed)
    requests = [(rng.choice(["s1", "s2", "s3", "s4"]), rng.choice([f"/p{i}" for i in range(12)] + [TEMPLATE]),
                 rng.choice([200, 404, 404, 500, None])) for _ in range(600)]

    def batch_records() -> list[dict[str, Any]]:
        return [record(BASE_MS + i, endpoint, status, service=service)
                for i, (service, endpoint, status) in enumerate(requests)]

    def catalog() -> EndpointCatalog:
        return EndpointCatalog({TEMPLATE}, max_endpoints=5, max_services=3)

    by_records, by_columns = catalog(), catalog()
    expected = batch_records()
    by_records.assign(expected)
    got: list[tuple[str, str]] = []
    records = batch_records()
    for number, start in enumerate(range(0, len(records), 50)):
        batch = records[start:start + 50]
        if number % 3 == 0:  # some batches as records, the others as columns
            by_columns.assign(batch)
            got.extend((r["service"], r["endpoint"]) for r in batch)
        else:
            columns = by_columns.assign_columns(from_records(batch))
            got.extend(columns.endpoints[code] for code in columns.endpoint.tolist())
    assert got == [(r["service"], r["endpoint"]) for r in expected]
    assert by_columns.stats == by_records.stats and by_columns.take_notices() == by_records.take_notices()
    assert {UNMATCHED, OVERFLOW} <= {endpoint for _service, endpoint in got}


def test_columns_with_every_key_known_come_back_as_they_are() -> None:
    catalog = EndpointCatalog()
    records = [record(BASE_MS, "/a", 200), record(BASE_MS + 1, "/a", 404)]
    catalog.assign(records[:1])
    columns = from_records(records)
    assert catalog.assign_columns(columns) is columns
