"""The fast path of extraction: a request event with one well-formed FactoryLog, straight to its record.

Nearly every event of a capture is a request whose `logs` hold one FactoryLog string with every field of the right
type. `request_record` builds that event's record in one pass, without the intermediate cleaned-fields dict, the
`Extraction` object or the field-by-field checks, and returns None for anything else — another shape, a second
FactoryLog, a field of the wrong type, a bad D1 fact, no event time — which then takes `Extractor`'s general path.
So it never reports problems: every event it accepts gives exactly the record the general path gives (same keys,
same order, same values; tests/test_pipeline/test_fast_record.py checks that on generated and mutated events).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from pipeline.factory_logs import REQUIRED_KEYS
from pipeline.routes import RouteTable, path_of_url, strip_query
from pipeline.timestamps import iso_to_ms
from pipeline.values import d1_fact, int_or_none, level_or_none, str_or_none, time_or_none

_EMPTY: dict[str, Any] = {}
_INF = math.inf
_INT64 = 2**63
_loads = orjson.loads
_DecodeError = orjson.JSONDecodeError
_intersection = REQUIRED_KEYS.intersection


_NOT_FAST: Any = object()  # marks an event the fast path leaves to the general one


def _only_factory_log(logs: Any) -> Any:
    """The event's FactoryLog when it is a JSON string and the only one, None when there is none, `_NOT_FAST` for
    anything else (several, or one logged as an object, or an unusual shape)."""
    if not logs:
        return None  # no logs: `[]`, or a falsy value the general path ignores as well
    if type(logs) is not list:
        return _NOT_FAST
    found = None
    for entry in logs:
        if type(entry) is not dict:
            return _NOT_FAST
        message = entry.get("message")
        if type(message) is not list:
            return _NOT_FAST
        for arg in message:
            if type(arg) is str:
                if arg[:1] != "{":
                    continue
                try:
                    value = _loads(arg)
                except _DecodeError:
                    continue
                if type(value) is dict and (value.keys() >= REQUIRED_KEYS or len(_intersection(value)) >= 4):
                    if found is not None:
                        return _NOT_FAST
                    found = value
            elif isinstance(arg, str | dict):  # a str subclass, or an object logged as is: the general path
                return _NOT_FAST
    return found


def _d1_facts(raw: Any) -> list[dict[str, Any]] | None:
    """The D1 facts of `metadata.d1` when every one is valid; None when any is not (the general path reports it)."""
    facts = []
    for item in raw if type(raw) is list else (raw,):
        if type(item) is not dict:
            return None
        get = item.get
        query_type = get("query_type")
        duration = get("duration_ms", 0)
        rows_read = get("rows_read", 0)
        rows_written = get("rows_written", 0)
        kind = type(duration)
        if not ((query_type == "read" or query_type == "write")  # noqa: PLR1714
                and (kind is float or kind is int) and 0 <= duration < _INF
                and type(rows_read) is int and rows_read >= 0 and type(rows_written) is int and rows_written >= 0):
            return None
        facts.append(d1_fact(query_type, duration, rows_read, rows_written, get("database"), get("table"),
                             get("error_code")))
    return facts


def request_record(routes: RouteTable, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a tail event with a request and one well-formed FactoryLog string; None for anything else."""
    log = _only_factory_log(obj.get("logs"))
    if log is _NOT_FAST:
        return None
    event = obj.get("event")
    if type(event) is not dict:
        return None
    request = event.get("request")
    if type(request) is not dict:
        return None
    if log is None:
        service = log_endpoint = request_id = tenant = method = path = level = error_code = error_message = None
        event_time = status = None
        duration = None
        d1: list[dict[str, Any]] | None = []
    else:
        get = log.get
        service, log_endpoint, request_id = get("service"), get("endpoint"), get("request_id")
        tenant, method, path = get("tenant_id"), get("method"), get("path")
        user_agent = get("user_agent")
        if not ((type(service) is str or service is None) and (type(log_endpoint) is str or log_endpoint is None)
                and (type(request_id) is str or request_id is None) and (type(tenant) is str or tenant is None)
                and (type(method) is str or method is None) and (type(path) is str or path is None)
                and (type(user_agent) is str or user_agent is None)):
            return None
        stamp = get("timestamp")
        event_time = None
        if stamp is not None:
            if type(stamp) is not str:
                return None
            try:
                event_time = iso_to_ms(stamp)
            except (ValueError, OverflowError):
                return None
        level = get("level")
        if level is not None:
            level = level_or_none(level)
            if level is None:
                return None
        status = get("status")
        if status is not None and not (type(status) is int and 100 <= status <= 999):
            return None
        duration = get("duration_ms")
        if duration is not None:
            kind = type(duration)
            if not ((kind is float or kind is int) and 0 <= duration < _INF):
                return None
            duration = float(duration)
        error = get("error")
        error_code = error_message = None
        if error is not None:
            if type(error) is dict:
                error_message, error_code = str_or_none(error.get("message")), str_or_none(error.get("code"))
            elif type(error) is str:
                error_message = error
            else:
                return None
        d1 = []
        metadata = get("metadata")
        if isinstance(metadata, dict) and "d1" in metadata:
            d1 = _d1_facts(metadata["d1"])
            if d1 is None:
                return None

    if event_time is None:
        event_time = time_or_none(obj.get("eventTimestamp"))
        if event_time is None:
            return None
    log_service = service
    if status is None:
        response = event.get("response")
        if isinstance(response, dict):
            status = int_or_none(response.get("status"))
    if path is not None and ("?" in path or "#" in path):
        path = strip_query(path)
    if method is None:
        method = str_or_none(request.get("method"))
    if path is None:
        url = request.get("url")
        if isinstance(url, str):
            path = path_of_url(url)
    headers = request.get("headers")
    if not isinstance(headers, dict):
        headers = _EMPTY
    cf = request.get("cf")
    if not isinstance(cf, dict):
        cf = _EMPTY
    wall = obj.get("wallTime")
    if not (type(wall) is int and -_INT64 < wall < _INT64):
        wall = int_or_none(wall)
    cpu = obj.get("cpuTime")
    if not (type(cpu) is int and -_INT64 < cpu < _INT64):
        cpu = int_or_none(cpu)
    colo, country = cf.get("colo"), cf.get("country")
    source: str | None = "log"
    if duration is None:
        duration = float(wall) if wall is not None else None
        source = "wall" if wall is not None else None
    exceptions = obj.get("exceptions")
    if exceptions and isinstance(exceptions, list) and isinstance(exceptions[0], dict):
        first = exceptions[0]
        if error_code is None:
            error_code = str_or_none(first.get("name"))
        if error_message is None:
            error_message = str_or_none(first.get("message"))
    worker = obj.get("scriptName")
    if not isinstance(worker, str):
        worker = None
    outcome = obj.get("outcome")
    return {
        "service": worker or log_service or "unknown",
        "worker": worker,
        "endpoint": routes.endpoint(path, log_endpoint),
        "method": method.upper() if method else None,
        "path": path,
        "status": status,
        "outcome": outcome if isinstance(outcome, str) else "unknown",
        "event_time_ms": event_time,
        "duration_ms": duration,
        "duration_source": source,
        "cpu_ms": cpu,
        "wall_ms": wall,
        "colo": colo if isinstance(colo, str) else None,
        "country": (country if isinstance(country, str) else None) or str_or_none(headers.get("cf-ipcountry")),
        "tenant": tenant or str_or_none(headers.get("x-tenant-id")),
        "request_id": request_id or str_or_none(headers.get("cf-ray")),
        "level": level,
        "log_endpoint": log_endpoint,
        "log_service": log_service,
        "error_code": error_code,
        "error_message": error_message,
        "truncated": obj.get("truncated") is True,
        "d1": d1,
    }
