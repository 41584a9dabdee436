"""Workers Trace Events Logpush lines → TraceItems the reader takes."""

from __future__ import annotations

import orjson
import pytest

from pipeline.logpush import camel, trace_item, trace_items_of_ndjson
from pipeline.parsing import LogParser

FACTORY_LOG = ('{"timestamp":"2026-01-06T12:00:00.255Z","level":"info","service":"factory-api",'
               '"endpoint":"/api/public/factory/templates","request_id":"r-1","tenant_id":"tnt_acme",'
               '"method":"GET","path":"/api/public/factory/templates","status":200,"duration_ms":41}')
LINE = {
    "CPUTimeMs": 6, "WallTimeMs": 47, "DispatchNamespace": "", "Entrypoint": "", "EventType": "fetch",
    "EventTimestampMs": 1767700800200, "Outcome": "ok", "ScriptName": "factory-api", "ScriptTags": [],
    "ScriptVersion": {"ID": "6f1d2c7a"},
    "Event": {"RayID": "8f1e", "Request": {"URL": "https://api.example.com/api/public/factory/templates",
                                           "Method": "GET", "Headers": {"X-Tenant-Id": "tnt_acme"}},
              "Response": {"Status": 200}},
    "Logs": [{"Level": "log", "Message": [FACTORY_LOG], "TimestampMs": 1767700800255}],
    "Exceptions": [{"Name": "Error", "Message": "boom", "TimestampMs": 1767700800256}],
}


def test_a_logpush_line_becomes_the_trace_item_wrangler_prints() -> None:
    item = trace_item(LINE)
    assert item == {
        "cpuTime": 6, "wallTime": 47, "eventTimestamp": 1767700800200,
        "outcome": "ok", "scriptName": "factory-api", "scriptTags": [], "scriptVersion": {"id": "6f1d2c7a"},
        "event": {"rayId": "8f1e", "request": {"url": "https://api.example.com/api/public/factory/templates",
                                                "method": "GET", "headers": {"X-Tenant-Id": "tnt_acme"}},
                  "response": {"status": 200}},
        "logs": [{"level": "log", "message": [FACTORY_LOG], "timestamp": 1767700800255}],
        "exceptions": [{"name": "Error", "message": "boom", "timestamp": 1767700800256}],
    }
    parser = LogParser("logpush")
    out = parser.feed_objects([item])
    assert [(r["service"], r["endpoint"], r["status"]) for r in out.records] == [
        ("factory-api", "/api/public/factory/templates", 200)]


def test_header_names_and_cf_properties_are_kept() -> None:
    assert camel({"Headers": {"CF-Ray": "x"}, "Cf": {"Colo": "FRA"}, "Inner": {"URL": 1}}) == {
        "headers": {"CF-Ray": "x"}, "cf": {"Colo": "FRA"}, "inner": {"url": 1}}


def test_validation_uploads_give_no_event() -> None:
    assert trace_items_of_ndjson(b'{"content":"tests"}\n') == []
    assert trace_items_of_ndjson(b"0123456789abcdef0123456789abcdef\n") == []  # an ownership challenge token
    lines = orjson.dumps(LINE) + b"\n" + b'{"content":"tests"}\n\n'
    assert len(trace_items_of_ndjson(lines)) == 1


def test_a_line_that_is_not_json_refuses_the_body() -> None:
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        trace_items_of_ndjson(orjson.dumps(LINE) + b"\n{oops\n")
    assert trace_items_of_ndjson(b"[1]\n") == [[1]]  # not an object: the reader dead-letters it as not_an_event


def test_a_third_party_logpush_line_becomes_the_request_it_describes() -> None:
    """A `workers_trace_events` line from another project's tests (tests/fixtures/logpush/README.md)."""
    from pathlib import Path

    from pipeline.extract import Extractor
    from pipeline.parsing import LogParser

    body = (Path(__file__).resolve().parents[1] / "fixtures" / "logpush" / "workers-trace-events.ndjson").read_bytes()
    parser = LogParser("logpush", Extractor())
    [record] = parser.feed_objects(trace_items_of_ndjson(body)).records
    assert (record["service"], record["method"], record["path"], record["status"], record["outcome"],
            record["event_time_ms"]) == ("chat-gpt-little-butterfly-0c3d", "GET", "/v2/_catalog", 404, "exception",
                                         1689852946804)
    assert record["error_message"] == "Uncaught TypeError: Cannot read property 'x' of undefined"
    assert record["endpoint"] == "<unmatched>"  # a 404 of a path never seen answering: a scanner's, folded
