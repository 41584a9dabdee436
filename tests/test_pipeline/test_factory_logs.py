"""Finding FactoryLog records in console arguments, and checking their fields one by one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.factory_logs import clean_factory_fields, d1_facts, factory_logs_in, is_factory_log
from schemas.record import D1Fact

T0 = 1_767_700_800_000  # 2026-01-06T12:00:00Z


def factory_log(**fields: Any) -> dict[str, Any]:
    """A complete FactoryLog as the spec defines it, with overrides (a None value removes the key)."""
    log: dict[str, Any] = {
        "timestamp": "2026-01-06T12:00:00.255Z", "level": "info", "service": "factory-api",
        "endpoint": "/api/public/factory/templates/:id", "request_id": "req-1", "tenant_id": "tnt_acme",
        "method": "GET", "path": "/api/public/factory/templates/tpl_4821", "status": 200, "duration_ms": 41,
    }
    log.update(fields)
    return {key: value for key, value in log.items() if value is not None}


def logs_of(*messages: list[Any]) -> list[dict[str, Any]]:
    return [{"message": message, "level": "log", "timestamp": T0} for message in messages]


def clean(log: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    return clean_factory_fields(log, problems), problems


# -- finding them -------------------------------------------------------------------------------------------------


def test_four_of_the_required_keys_make_a_factory_log() -> None:
    assert is_factory_log({"timestamp": 1, "level": "x", "service": "s", "status": 200})
    assert not is_factory_log({"timestamp": 1, "level": "x", "service": "s"})
    assert not is_factory_log({"timestamp": 1, "level": "x", "service": "s", "message": "m", "user_agent": "u"})
    assert not is_factory_log({})


def test_json_string_argument() -> None:
    log = factory_log()
    assert factory_logs_in(logs_of([json.dumps(log, separators=(",", ":"))])) == [log]


def test_object_argument() -> None:
    log = factory_log(metadata={"d1": []})
    assert factory_logs_in(logs_of(["request done", log])) == [log]


def test_every_factory_log_in_order() -> None:
    first, second, third = factory_log(status=200), factory_log(status=201), factory_log(status=202)
    logs = logs_of(["starting", 42, None, json.dumps(first)], ["cache", {"hit": True}], [second, json.dumps(third)])
    assert factory_logs_in(logs) == [first, second, third]


@pytest.mark.parametrize(
    "argument",
    [
        "[cron] refreshing template cache",
        "{not json at all",
        '{"timestamp": "2026-01-06T12:00:00Z", "level": "info"}',  # two keys only
        json.dumps([factory_log()]),  # an array, even of FactoryLogs
        " " + json.dumps(factory_log()),  # not the bare output of JSON.stringify
        {"hit": True, "key": "templates:tnt_initech:invoices:2"},
        ["a", "b"],
        7,
        None,
    ],
)
def test_other_arguments_are_not_factory_logs(argument: Any) -> None:
    assert factory_logs_in(logs_of([argument])) == []


@pytest.mark.parametrize(
    "logs",
    [None, "x", {"message": [json.dumps(factory_log())]}, [None, "x", 3], [{"message": json.dumps(factory_log())}],
     [{"level": "log"}]],
)
def test_logs_of_the_wrong_shape_are_skipped(logs: Any) -> None:
    assert factory_logs_in(logs) == []


# -- cleaning fields ----------------------------------------------------------------------------------------------


def test_clean_log_gives_typed_fields() -> None:
    fields, problems = clean(factory_log(user_agent="curl/8", error={"message": "boom", "code": "E_BOOM"}))
    assert problems == []
    assert fields == {
        "service": "factory-api", "endpoint": "/api/public/factory/templates/:id", "request_id": "req-1",
        "tenant_id": "tnt_acme", "method": "GET", "path": "/api/public/factory/templates/tpl_4821",
        "user_agent": "curl/8", "event_time_ms": T0 + 255, "level": "INFO", "status": 200, "duration_ms": 41.0,
        "error_message": "boom", "error_code": "E_BOOM",
    }
    assert isinstance(fields["duration_ms"], float)


@pytest.mark.parametrize(("level", "cleaned"), [("info", "INFO"), ("Warn", "WARN"), ("ERROR", "ERROR"),
                                                ("dEbUg", "DEBUG")])
def test_level_in_any_case(level: str, cleaned: str) -> None:
    fields, problems = clean(factory_log(level=level))
    assert fields["level"] == cleaned and problems == []


@pytest.mark.parametrize(
    ("override", "dropped", "problem"),
    [
        ({"status": "abc"}, "status", "status: not an HTTP status code: 'abc'"),
        ({"status": 42}, "status", "status: not an HTTP status code: '42'"),
        ({"status": 1000}, "status", "status: not an HTTP status code: '1000'"),
        ({"status": True}, "status", "status: not an HTTP status code: 'True'"),
        ({"status": 200.0}, "status", "status: not an HTTP status code: '200.0'"),
        ({"duration_ms": -1}, "duration_ms", "duration_ms: not a non-negative number: '-1'"),
        ({"duration_ms": "41"}, "duration_ms", "duration_ms: not a non-negative number: '41'"),
        ({"duration_ms": float("inf")}, "duration_ms", "duration_ms: not a non-negative number: 'inf'"),
        ({"duration_ms": float("nan")}, "duration_ms", "duration_ms: not a non-negative number: 'nan'"),
        ({"timestamp": "yesterday"}, "event_time_ms", "timestamp: not an ISO 8601 time: 'yesterday'"),
        ({"timestamp": "2026-02-30T00:00:00Z"}, "event_time_ms",
         "timestamp: not an ISO 8601 time: '2026-02-30T00:00:00Z'"),
        ({"timestamp": True}, "event_time_ms", "timestamp: not an ISO 8601 time: 'True'"),
        ({"timestamp": 1e300}, "event_time_ms", "timestamp: not an ISO 8601 time: '1e+300'"),
        ({"timestamp": float("nan")}, "event_time_ms", "timestamp: not an ISO 8601 time: 'nan'"),
        ({"level": "verbose"}, "level", "level: not one of INFO, WARN, ERROR, DEBUG: 'verbose'"),
        ({"level": 3}, "level", "level: not one of INFO, WARN, ERROR, DEBUG: '3'"),
        ({"service": 42}, "service", "service: expected a string, got int"),
        ({"tenant_id": ["a"]}, "tenant_id", "tenant_id: expected a string, got list"),
    ],
)
def test_a_bad_field_is_dropped_and_reported(override: dict[str, Any], dropped: str, problem: str) -> None:
    fields, problems = clean(factory_log(**override))
    assert problems == [problem]
    assert dropped not in fields
    good, _ = clean(factory_log())
    assert fields == {key: value for key, value in good.items() if key != dropped}


def test_several_bad_fields_are_each_reported() -> None:
    fields, problems = clean(factory_log(status="abc", duration_ms=-5, timestamp="nope", method=1))
    assert len(problems) == 4
    assert [p.split(":")[0] for p in problems] == ["method", "timestamp", "status", "duration_ms"]
    assert fields["service"] == "factory-api" and fields["tenant_id"] == "tnt_acme"


@pytest.mark.parametrize(("stamp", "ms"), [(T0, T0), (T0 / 1000, T0), ("2026-01-06T13:00:00+01:00", T0)])
def test_numeric_and_offset_timestamps(stamp: Any, ms: int) -> None:
    fields, problems = clean(factory_log(timestamp=stamp))
    assert fields["event_time_ms"] == ms and problems == []


def test_null_fields_are_absent_not_bad() -> None:
    fields, problems = clean({"timestamp": None, "level": None, "status": None, "service": None, "error": None})
    assert fields == {} and problems == []


@pytest.mark.parametrize(
    ("error", "expected", "problems"),
    [
        ({"message": "D1 timeout", "code": "D1_TIMEOUT"}, {"error_message": "D1 timeout", "error_code": "D1_TIMEOUT"},
         []),
        ({"message": "no code"}, {"error_message": "no code"}, []),
        ({"code": 7, "message": ["x"]}, {"error_message": '["x"]'}, []),  # a message that is not text: compact JSON
        ("TypeError: Cannot read properties of undefined (reading 'slug')",
         {"error_message": "TypeError: Cannot read properties of undefined (reading 'slug')"}, []),
        (42, {}, ["error: expected an object or a string"]),
    ],
)
def test_error_as_object_or_string(error: Any, expected: dict[str, Any], problems: list[str]) -> None:
    fields, found = clean(factory_log(error=error))
    assert {key: fields[key] for key in ("error_message", "error_code") if key in fields} == expected
    assert found == problems


# -- D1 facts -----------------------------------------------------------------------------------------------------

READ = {"database": "factory", "table": "templates", "query_type": "read", "duration_ms": 3.5, "rows_read": 12,
        "rows_written": 0}
WRITE = {"database": "factory", "table": "imports", "query_type": "write", "duration_ms": 8, "rows_read": 0,
         "rows_written": 4096, "error_code": "connection_failed"}


def test_d1_as_one_object() -> None:
    fields, problems = clean(factory_log(metadata={"d1": READ}))
    assert problems == []
    assert fields["d1"] == [{**READ, "error_code": None}]


def test_d1_as_a_list() -> None:
    fields, problems = clean(factory_log(metadata={"d1": [READ, WRITE]}))
    assert problems == []
    assert fields["d1"] == [{**READ, "error_code": None}, {**WRITE, "duration_ms": 8.0}]
    for fact in fields["d1"]:
        D1Fact.model_validate(fact)


def test_d1_defaults_and_optional_names() -> None:
    problems: list[str] = []
    assert d1_facts({"query_type": "write"}, problems) == [
        {"database": None, "table": None, "query_type": "write", "duration_ms": 0.0, "rows_read": 0,
         "rows_written": 0, "error_code": None}]
    assert problems == []


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("SELECT 1", "metadata.d1[1]: expected an object"),
        ({**READ, "query_type": "delete"}, "metadata.d1[1].query_type: must be 'read' or 'write'"),
        ({**READ, "query_type": None}, "metadata.d1[1].query_type: must be 'read' or 'write'"),
        ({**READ, "duration_ms": -1}, "metadata.d1[1].duration_ms: not a non-negative number"),
        ({**READ, "duration_ms": "3"}, "metadata.d1[1].duration_ms: not a non-negative number"),
        ({**READ, "duration_ms": float("inf")}, "metadata.d1[1].duration_ms: not a non-negative number"),
        ({**READ, "rows_read": -1}, "metadata.d1[1].rows_read/rows_written: not non-negative integers"),
        ({**READ, "rows_written": 1.5}, "metadata.d1[1].rows_read/rows_written: not non-negative integers"),
        ({**READ, "rows_read": True}, "metadata.d1[1].rows_read/rows_written: not non-negative integers"),
    ],
)
def test_invalid_d1_entries_are_reported_and_the_valid_ones_kept(item: Any, problem: str) -> None:
    problems: list[str] = []
    facts = d1_facts([READ, item, WRITE], problems)
    assert problems == [problem]
    assert [fact["table"] for fact in facts] == ["templates", "imports"]


def test_d1_names_of_the_wrong_type_become_null() -> None:
    problems: list[str] = []
    assert d1_facts({**READ, "database": 1, "table": ["t"], "error_code": 5}, problems)[0] == {
        **READ, "database": None, "table": None, "error_code": None}
    assert problems == []


@pytest.mark.parametrize("metadata", [None, "d1", {"other": 1}, ["d1"]])
def test_no_d1_facts_without_metadata_d1(metadata: Any) -> None:
    fields, problems = clean(factory_log(metadata=metadata))
    assert "d1" not in fields and problems == []
