"""Extractor: one decoded object to one normalized record, a non-request kind, or a rejection."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.extract import Extraction, Extractor, non_request_kind
from pipeline.routes import RouteTable
from schemas.record import LogRecord
from tests.captures import sample_events

SAMPLE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "wrangler-tail-sample.json"
EVENTS = sample_events(SAMPLE_PATH)
T0 = 1_767_700_800_000  # 2026-01-06T12:00:00Z
TEMPLATES = "/api/public/factory/templates"


def extract(obj: dict[str, Any], extractor: Extractor | None = None) -> Extraction:
    result = (extractor or Extractor()).extract(obj)
    if result.record is not None:
        LogRecord.model_validate(result.record)
        orjson.dumps(result.record)  # what goes on the logs topic
    return result


def record_of(obj: dict[str, Any]) -> dict[str, Any]:
    result = extract(obj)
    assert result.record is not None, result
    return result.record


def factory_log(**fields: Any) -> dict[str, Any]:
    log: dict[str, Any] = {
        "timestamp": "2026-01-06T12:00:00.500Z", "level": "info", "service": "factory-api",
        "endpoint": f"{TEMPLATES}/:id", "request_id": "req-1", "tenant_id": "tnt_log", "method": "get",
        "path": f"{TEMPLATES}/tpl_1?x=1", "status": 201, "duration_ms": 12.5,
    }
    log.update(fields)
    return {key: value for key, value in log.items() if value is not None}


def event(*logged: Any, **fields: Any) -> dict[str, Any]:
    """A tail event for GET /api/things/42 with each of `logged` as the only argument of one console.log."""
    out: dict[str, Any] = {
        "wallTime": 30, "cpuTime": 4, "truncated": False, "executionModel": "stateless", "outcome": "ok",
        "scriptName": "factory-worker", "diagnosticsChannelEvents": [], "exceptions": [],
        "logs": [{"message": [arg if isinstance(arg, str) else json.dumps(arg)], "level": "log", "timestamp": T0}
                 for arg in logged],
        "eventTimestamp": T0,
        "event": {"request": {"url": "https://h.example/api/things/42?page=2", "method": "GET",
                              "headers": {"cf-ray": "ray-1", "x-tenant-id": "tnt_header", "cf-ipcountry": "FR"},
                              "cf": {"colo": "CDG", "country": "FR"}},
                  "response": {"status": 200}},
    }
    out.update(fields)
    return out


# -- the sample ---------------------------------------------------------------------------------------------------


def test_sample_gives_11_records_and_1_scheduled_event() -> None:
    results = [extract(obj) for obj in EVENTS]
    assert sum(result.record is not None for result in results) == 11
    assert [result.non_request for result in results] == [None, "scheduled"] + [None] * 10
    assert all(result.problems == [] and result.reject_kind is None for result in results)


# event number in the sample (1-based), then the fields to check
SAMPLE_RECORDS: dict[int, dict[str, Any]] = {
    1: {"endpoint": TEMPLATES, "method": "GET", "status": 200, "outcome": "ok", "event_time_ms": T0 + 255,
        "duration_ms": 41.0, "duration_source": "log", "tenant": "tnt_acme", "level": "INFO", "colo": "IAD",
        "request_id": "13152e61-ddeb-4e0f-afb9-fdceb396f87c", "cpu_ms": 6, "wall_ms": 47},
    3: {"endpoint": f"{TEMPLATES}/:slug", "log_endpoint": f"{TEMPLATES}/:id",
        "path": f"{TEMPLATES}/tpl_0000missing", "status": 404, "outcome": "ok", "level": "WARN",
        "duration_source": "log", "duration_ms": 9.0},
    4: {"endpoint": "/api/factory/templates", "method": "POST", "status": 500, "outcome": "exception",
        "error_code": "TypeError", "error_message": "TypeError: Cannot read properties of undefined (reading 'slug')",
        "tenant": "tnt_globex", "event_time_ms": T0 + 3037, "duration_ms": 87.0, "level": "ERROR"},
    5: {"endpoint": f"{TEMPLATES}/:slug/preview", "status": 503, "outcome": "exceededCpu", "error_code": "Error",
        "error_message": "Worker exceeded CPU time limit.", "duration_ms": 14.0, "duration_source": "wall",
        "tenant": "tnt_initech", "request_id": "f7e535eebff534ea", "event_time_ms": T0 + 4102, "level": None,
        "country": "GB", "colo": "LHR"},
    6: {"endpoint": "/api/health", "status": 200, "tenant": None, "duration_ms": 3.0, "duration_source": "wall",
        "log_endpoint": None},
    7: {"endpoint": TEMPLATES, "method": "OPTIONS", "status": 204, "duration_ms": 1.0, "cpu_ms": 0},
    8: {"endpoint": TEMPLATES, "path": TEMPLATES, "status": 200, "tenant": "tnt_initech", "duration_source": "log"},
    9: {"endpoint": f"{TEMPLATES}/:slug", "path": f"{TEMPLATES}/export", "status": None, "outcome": "canceled",
        "duration_ms": 1204.0, "duration_source": "wall", "tenant": "tnt_acme", "error_code": None},
    11: {"endpoint": "/api/factory/templates/import", "method": "POST", "status": 200, "truncated": True,
         "duration_ms": 2875.0, "duration_source": "wall", "cpu_ms": 412, "event_time_ms": T0 + 9100},
    12: {"endpoint": f"{TEMPLATES}/:slug", "tenant": "tnt_globex", "status": 200, "duration_ms": 16.0,
         "truncated": False},
}


@pytest.mark.parametrize("number", SAMPLE_RECORDS)
def test_sample_record_fields(number: int) -> None:
    record = record_of(EVENTS[number - 1])
    assert {key: record[key] for key in SAMPLE_RECORDS[number]} == SAMPLE_RECORDS[number]
    assert record["service"] == record["worker"] == "factory-api"
    assert record["d1"] == []


def test_every_sample_record_validates_and_keeps_its_endpoint_without_ids() -> None:
    for obj in EVENTS:
        result = extract(obj)
        if result.record is not None:
            assert ":id" not in result.record["endpoint"]  # the templates cover the sample's parameters
            assert "?" not in result.record["endpoint"] and "?" not in (result.record["path"] or "")


# -- precedence: FactoryLog over the event ------------------------------------------------------------------------


def test_factory_log_fields_win_over_the_event() -> None:
    record = record_of(event(factory_log()))
    assert record["status"] == 201  # not the response's 200
    assert record["method"] == "GET"  # upper-cased
    assert record["path"] == f"{TEMPLATES}/tpl_1"  # the log's path, query stripped, not the URL's
    assert record["endpoint"] == f"{TEMPLATES}/:slug"
    assert record["log_endpoint"] == f"{TEMPLATES}/:id"
    assert record["tenant"] == "tnt_log" and record["request_id"] == "req-1"
    assert record["event_time_ms"] == T0 + 500  # the log's timestamp, not eventTimestamp
    assert (record["duration_ms"], record["duration_source"]) == (12.5, "log")
    # except the service: it is the Worker, so requests with and without a log group together
    assert record["service"] == "factory-worker" and record["worker"] == "factory-worker"
    assert record["log_service"] == "factory-api"
    assert record["level"] == "INFO"


def test_without_factory_log_the_event_fills_in() -> None:
    record = record_of(event("plain text log"))
    assert record["status"] == 200 and record["method"] == "GET"
    assert record["path"] == "/api/things/42" and record["endpoint"] == "/api/things/:id"
    assert record["tenant"] == "tnt_header"  # x-tenant-id
    assert record["request_id"] == "ray-1"  # cf-ray
    assert record["event_time_ms"] == T0
    assert (record["duration_ms"], record["duration_source"], record["wall_ms"]) == (30.0, "wall", 30)
    assert record["service"] == "factory-worker" and record["level"] is None
    assert (record["colo"], record["country"]) == ("CDG", "FR")


def test_country_falls_back_to_the_header() -> None:
    obj = event()
    obj["event"]["request"]["cf"] = {}
    record = record_of(obj)
    assert (record["colo"], record["country"]) == (None, "FR")


def test_no_duration_at_all() -> None:
    obj = event()
    del obj["wallTime"]
    record = record_of(obj)
    assert (record["duration_ms"], record["duration_source"], record["wall_ms"]) == (None, None, None)


def test_bad_factory_log_fields_fall_back_and_are_reported() -> None:
    result = extract(event(factory_log(status="abc", duration_ms=-3, timestamp="not a time")))
    assert result.record is not None
    assert len(result.problems) == 3
    assert result.record["status"] == 200  # from the response
    assert (result.record["duration_ms"], result.record["duration_source"]) == (30.0, "wall")
    assert result.record["event_time_ms"] == T0  # eventTimestamp
    assert result.record["tenant"] == "tnt_log"  # the good fields are still used


def test_several_factory_logs_later_fields_override_and_d1_adds_up() -> None:
    read = {"query_type": "read", "duration_ms": 2, "rows_read": 5, "rows_written": 0}
    write = {"query_type": "write", "duration_ms": 4, "rows_read": 0, "rows_written": 1,
             "error_code": "connection_failed"}
    first = factory_log(status=200, level="debug", metadata={"d1": read})
    second = factory_log(status=502, tenant_id=None, metadata={"d1": [write, {"query_type": "bad"}]})
    result = extract(event(first, "between", second))
    record = result.record
    assert record is not None
    assert record["status"] == 502 and record["level"] == "INFO"
    assert record["tenant"] == "tnt_log"  # the first log's, the second has none
    assert [fact["query_type"] for fact in record["d1"]] == ["read", "write"]
    assert record["d1"][1]["error_code"] == "connection_failed"
    assert result.problems == ["metadata.d1[1].query_type: must be 'read' or 'write'"]


def test_factory_log_logged_as_an_object() -> None:
    obj = event()
    obj["logs"] = [{"message": ["done", factory_log(status=418)], "level": "info", "timestamp": T0}]
    assert record_of(obj)["status"] == 418


def test_error_code_from_the_log_wins_over_the_exception() -> None:
    exceptions = [{"name": "TypeError", "message": "x is undefined", "timestamp": T0}]
    with_code = record_of(event(factory_log(error={"code": "E_TPL", "message": "template broken"}),
                                exceptions=exceptions, outcome="exception"))
    assert (with_code["error_code"], with_code["error_message"]) == ("E_TPL", "template broken")
    from_exception = record_of(event(exceptions=exceptions, outcome="exception"))
    assert (from_exception["error_code"], from_exception["error_message"]) == ("TypeError", "x is undefined")
    assert from_exception["outcome"] == "exception"


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"outcome": None}, "outcome", "unknown"),
        ({"outcome": "responseStreamDisconnected"}, "outcome", "responseStreamDisconnected"),
        ({"truncated": "yes"}, "truncated", False),
        ({"truncated": True}, "truncated", True),
        ({"scriptName": None}, "service", "factory-api"),
        ({"cpuTime": "4"}, "cpu_ms", None),
        ({"wallTime": 1e300}, "wall_ms", None),
        ({"exceptions": ["not an object"]}, "error_code", None),
    ],
)
def test_odd_event_fields(change: dict[str, Any], field: str, value: Any) -> None:
    assert record_of(event(factory_log(), **change))[field] == value


def test_service_unknown_without_log_or_script_name() -> None:
    assert record_of(event(scriptName=None))["service"] == "unknown"


def test_custom_route_table() -> None:
    extractor = Extractor(RouteTable(["/api/things/:thingId"]))
    result = extract(event(), extractor)
    assert result.record is not None and result.record["endpoint"] == "/api/things/:thingId"


# -- event time ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", [None, "1767700800000", 1e300, float("nan"), True])
def test_no_usable_event_time_is_rejected(stamp: Any) -> None:
    result = extract(event("plain", eventTimestamp=stamp))
    assert (result.record, result.reject_kind) == (None, "no_event_time")
    assert result.reject_reason == "no FactoryLog timestamp and no eventTimestamp"


def test_factory_log_time_rescues_an_event_without_one() -> None:
    record = record_of(event(factory_log(), eventTimestamp=None))
    assert record["event_time_ms"] == T0 + 500


def test_problems_are_kept_on_a_rejection() -> None:
    result = extract(event(factory_log(timestamp="bad", status="x"), eventTimestamp=None))
    assert result.reject_kind == "no_event_time" and len(result.problems) == 2


# -- non-request events -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"cron": "*/15 * * * *", "scheduledTime": T0}, "scheduled"),
        ({"scheduledTime": "2026-01-06T12:00:00Z"}, "alarm"),
        ({"queue": "imports", "batchSize": 10}, "queue"),
        ({"mailFrom": "a@example.com", "rcptTo": "b@example.com", "rawSize": 10}, "email"),
        ({"rpcMethod": "render"}, "rpc"),
        ({"consumedEvents": [{"scriptName": "w"}]}, "tail"),
        ({"getWebSocketEvent": {"webSocketEventType": "close", "code": 1000}}, "websocket"),
        ({"type": "overload", "message": "Tail is currently in sampling mode"}, "overload"),
        ({"type": "overload-stop", "message": "Tail has exited sampling mode"}, "overload-stop"),
        (None, "null"),
        ({}, "other"),
        ({"request": "not an object"}, "other"),
        ("a string", "other"),
    ],
)
def test_non_request_kinds(payload: Any, kind: str) -> None:
    result = extract(event("a plain log", event=payload))
    assert (result.record, result.non_request, result.reject_kind) == (None, kind, None)
    assert non_request_kind(payload) == kind


def test_non_request_event_with_a_factory_log_is_a_record() -> None:
    record = record_of(event(factory_log(), event={"queue": "imports", "batchSize": 1}))
    assert record["path"] == f"{TEMPLATES}/tpl_1" and record["colo"] is None and record["status"] == 201
    assert record["endpoint"] == "queue:imports"  # never a request of the HTTP route the log names


def test_event_without_event_key() -> None:
    obj = event("plain")
    del obj["event"]
    assert extract(obj).non_request == "null"


# -- bare FactoryLogs and other objects ---------------------------------------------------------------------------


def test_bare_factory_log_is_a_record_with_outcome_log() -> None:
    log = factory_log(metadata={"d1": {"query_type": "read", "duration_ms": 1, "rows_read": 1, "rows_written": 0}},
                      error={"code": "E1", "message": "m"})
    result = extract(log)
    record = result.record
    assert record is not None and result.problems == []
    assert record == {
        "service": "factory-api", "log_service": "factory-api", "worker": None, "endpoint": f"{TEMPLATES}/:slug",
        "method": "GET",
        "path": f"{TEMPLATES}/tpl_1", "status": 201, "outcome": "log", "event_time_ms": T0 + 500,
        "duration_ms": 12.5, "duration_source": "log", "cpu_ms": None, "wall_ms": None, "colo": None,
        "country": None, "tenant": "tnt_log", "request_id": "req-1", "level": "INFO",
        "log_endpoint": f"{TEMPLATES}/:id", "error_code": "E1", "error_message": "m", "truncated": False,
        "d1": [{"database": None, "table": None, "query_type": "read", "duration_ms": 1.0, "rows_read": 1,
                "rows_written": 0, "error_code": None}],
        "entrypoint": None, "execution_model": None,
    }


def test_bare_factory_log_with_bad_fields() -> None:
    result = extract(factory_log(status="abc", duration_ms=-1))
    assert result.record is not None and len(result.problems) == 2
    assert result.record["status"] is None
    assert (result.record["duration_ms"], result.record["duration_source"]) == (None, None)


@pytest.mark.parametrize(
    ("path", "endpoint", "expected"),
    [
        (None, f"{TEMPLATES}/tpl_9", f"{TEMPLATES}/:slug"),  # no path: the log's endpoint, as a route
        (None, "listTemplates", "listTemplates"),  # an endpoint name that is not a path is kept
        (None, None, "unknown"),
    ],
)
def test_bare_factory_log_endpoint(path: str | None, endpoint: str | None, expected: str) -> None:
    log = factory_log(path=path, endpoint=endpoint, method=None, service=None)
    assert record_of(log)["endpoint"] == expected
    assert record_of(log)["service"] == "unknown" and record_of(log)["method"] is None


@pytest.mark.parametrize("stamp", [None, "yesterday", 1e300])
def test_bare_factory_log_without_a_time_is_rejected(stamp: Any) -> None:
    result = extract(factory_log(timestamp=stamp))
    assert (result.record, result.reject_kind) == (None, "no_event_time")
    assert len(result.problems) == (0 if stamp is None else 1)


@pytest.mark.parametrize(
    "obj",
    [{}, {"hello": "world"}, {"timestamp": "2026-01-06T12:00:00Z", "level": "info", "service": "s"},
     {"request": {"url": "/a"}}, {"message": ["x"], "level": "log", "timestamp": T0}],
)
def test_objects_that_are_neither_are_rejected(obj: dict[str, Any]) -> None:
    result = extract(obj)
    assert (result.record, result.non_request, result.reject_kind) == (None, None, "not_an_event")
    assert result.reject_reason == "object is neither a tail event nor a FactoryLog"


def test_extract_does_not_change_its_input() -> None:
    obj = event(factory_log(metadata={"d1": [{"query_type": "read"}]}))
    before = copy.deepcopy(obj)
    record_of(obj)
    assert obj == before


def test_a_request_without_a_log_groups_with_the_logged_ones_of_its_worker() -> None:
    """A crash before the app logged must count against the same (service, endpoint) as the logged requests."""
    logged = copy.deepcopy(EVENTS[0])
    crashed = {**logged, "logs": [], "outcome": "exception",
               "event": {**logged["event"], "response": {"status": 500}}}
    one, two = extract(logged).record, extract(crashed).record
    assert one is not None and two is not None
    assert (one["service"], one["endpoint"]) == (two["service"], two["endpoint"]) == (
        "factory-api", "/api/public/factory/templates")


# -- lone surrogates, invocations, numbers ------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_factory_log_string_is_repaired_not_ignored() -> None:
    text = json.dumps(factory_log(user_agent="bot \ud83d"))  # `\\ud83d` in the log string, as JS writes it
    assert "\\ud83d" in text
    result = extract(event(text))
    assert result.record is not None and result.repaired_utf8 and result.problems == []
    assert (result.record["log_endpoint"], result.record["status"]) == (f"{TEMPLATES}/:id", 201)
    clean = extract(event(json.dumps(factory_log())))
    assert not clean.repaired_utf8 and clean.record == result.record


def test_non_request_events_with_a_factory_log_are_keyed_by_what_ran() -> None:
    cases = [({"cron": "*/5 * * * *", "scheduledTime": T0}, {}, "scheduled:*/5 * * * *"),
             ({"queue": "imports", "batchSize": 1}, {}, "queue:imports"),
             ({"rpcMethod": "sync"}, {"entrypoint": "Room", "executionModel": "durableObject"}, "do:Room:rpc:sync"),
             ({"scheduledTime": "2026-01-06T12:00:00Z"}, {"entrypoint": "Room", "executionModel": "durableObject"},
              "do:Room:alarm"),
             ({"mailFrom": "a@b", "rcptTo": "c@d", "rawSize": 1}, {}, "email")]
    for payload, fields, key in cases:
        assert record_of(event(factory_log(), event=payload, **fields))["endpoint"] == key


@pytest.mark.parametrize(
    ("fields", "endpoint"),
    [({}, "/api/things/:id"), ({"entrypoint": "default"}, "/api/things/:id"),
     ({"entrypoint": "ChatRoom", "executionModel": "durableObject"}, "do:ChatRoom:/api/things/:id"),
     ({"executionModel": "durableObject"}, "do:unknown:/api/things/:id"),
     ({"entrypoint": "AdminApi"}, "AdminApi:/api/things/:id")],
)
def test_durable_objects_and_named_entrypoints_get_their_own_endpoint_keys(fields: dict[str, Any],
                                                                          endpoint: str) -> None:
    record = record_of(event("plain", **fields))
    assert record["endpoint"] == endpoint
    assert record["entrypoint"] == fields.get("entrypoint")
    assert record["execution_model"] == fields.get("executionModel", "stateless")


@pytest.mark.parametrize(("wall", "cpu"), [(12.75, 0.5), (12, 0), (0.0, 1e-3)])
def test_fractional_times_stay_numbers_of_their_json_type(wall: float, cpu: float) -> None:
    record = record_of(event("plain", wallTime=wall, cpuTime=cpu))
    assert (record["wall_ms"], record["cpu_ms"]) == (wall, cpu)
    assert (type(record["wall_ms"]), type(record["cpu_ms"])) == (type(wall), type(cpu))
    assert record["duration_ms"] == float(wall) and record["duration_source"] == "wall"


@pytest.mark.parametrize(("message", "text"), [({"code": 1, "detail": "x"}, '{"code":1,"detail":"x"}'),
                                               (["a", 2], '["a",2]'), (42, "42"), ("plain", "plain"), (None, None)])
def test_an_exception_message_that_is_not_a_string_is_kept_as_compact_json(message: Any, text: str | None) -> None:
    record = record_of(event("plain", outcome="exception", exceptions=[{"name": "Error", "message": message}]))
    assert (record["error_code"], record["error_message"]) == ("Error", text)
