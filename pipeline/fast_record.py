"""The fast path of extraction: a request event with one well-formed FactoryLog, straight to its record.

Nearly every event of a capture is a request whose `logs` hold one FactoryLog string with every field of the right
type. `request_record` builds that event's record in one pass, without the intermediate cleaned-fields dict, the
`Extraction` object or the field-by-field checks, and returns None for anything else — another shape, a second
FactoryLog, a field of the wrong type, a bad D1 fact, no event time — which then takes `Extractor`'s general path.
So it never reports problems: every event it accepts gives exactly the record the general path gives (same keys,
same order, same values; tests/test_pipeline/test_fast_record.py checks that on generated and mutated events).
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from pipeline.fast_log import FACTORY_LOG_DECODER, D1Query, FactoryLog, LogError, Metadata
from pipeline.invocations import scope_of, scoped
from pipeline.routes import RouteTable, path_of_url, strip_query
from pipeline.timestamps import iso_to_ms
from pipeline.values import d1_fact, int_or_none, level_or_none, number_or_none, str_or_none, text_or_none, time_or_none

_INT64 = 2**63
_decode_log = FACTORY_LOG_DECODER.decode


_NOT_FAST: Any = object()  # marks an event the fast path leaves to the general one


def _only_factory_log(logs: Any) -> Any:
    """The event's FactoryLog when it is a JSON string and the only one, None when there is none, `_NOT_FAST` for
    anything else (several, or one logged as an object, or a `{` string that is not a well-typed FactoryLog)."""
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
                    value = _decode_log(arg)
                except Exception:  # not JSON, another type, too deep, …: the general path decides
                    return _NOT_FAST
                # Decoded: a JSON object with the ten required keys and no others, so a FactoryLog to orjson too.
                if found is not None:
                    return _NOT_FAST
                found = value
            elif isinstance(arg, str | dict):  # a str subclass, or an object logged as is: the general path
                return _NOT_FAST
    return found


def _d1_facts(raw: list[D1Query] | D1Query) -> list[dict[str, Any]]:
    """The D1 facts of `metadata.d1` (each one already checked by its type)."""
    items = raw if isinstance(raw, list) else (raw,)
    return [d1_fact(item.query_type, item.duration_ms, item.rows_read, item.rows_written, item.database,
                    item.table, item.error_code) for item in items]


def _header(request: dict[str, Any], name: str) -> str | None:
    """A request header that is a string; None when it or the headers are missing or of another type."""
    headers = request.get("headers")
    if isinstance(headers, dict):
        value = headers.get(name)
        if isinstance(value, str):
            return value
    return None


def request_record(routes: RouteTable, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a tail event with a request and one well-formed FactoryLog string; None for anything else."""
    log: FactoryLog | None = _only_factory_log(obj.get("logs"))
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
        d1: list[dict[str, Any]] = []
    else:
        service, log_endpoint, request_id = log.service, log.endpoint, log.request_id
        tenant, method, path = log.tenant_id, log.method, log.path
        stamp = log.timestamp
        event_time = None
        if stamp is not None:
            try:
                event_time = iso_to_ms(stamp)
            except (ValueError, OverflowError):
                return None
        level = log.level
        if level is not None:
            level = level_or_none(level)
            if level is None:
                return None
        status = log.status
        duration = log.duration_ms
        if duration is not None:
            duration = float(duration)
        error = log.error
        error_code = error_message = None
        if type(error) is LogError:
            error_message, error_code = error.message, error.code
        elif type(error) is str:
            error_message = error
        d1 = []
        metadata = log.metadata
        if type(metadata) is Metadata and metadata.d1 is not UNSET:
            d1 = _d1_facts(metadata.d1)

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
    cf = request.get("cf")
    if isinstance(cf, dict):
        colo, country = cf.get("colo"), cf.get("country")
        if not isinstance(colo, str):
            colo = None
        if not isinstance(country, str):
            country = None
    else:
        colo = country = None
    wall = obj.get("wallTime")
    if not (type(wall) is int and -_INT64 < wall < _INT64):
        wall = number_or_none(wall)
    cpu = obj.get("cpuTime")
    if not (type(cpu) is int and -_INT64 < cpu < _INT64):
        cpu = number_or_none(cpu)
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
            error_message = text_or_none(first.get("message"))
    worker = obj.get("scriptName")
    if not isinstance(worker, str):
        worker = None
    outcome = obj.get("outcome")
    entrypoint = obj.get("entrypoint")
    execution_model = obj.get("executionModel")
    endpoint = routes.endpoint(path, log_endpoint)
    if entrypoint is not None or execution_model != "stateless":  # rare: a DO, a named entrypoint, odd types
        if not isinstance(entrypoint, str):
            entrypoint = None
        if not isinstance(execution_model, str):
            execution_model = None
        endpoint = scoped(scope_of(entrypoint, execution_model), endpoint)
    return {
        "service": worker or log_service or "unknown",
        "worker": worker,
        "endpoint": endpoint,
        "method": method.upper() if method else None,
        "path": path,
        "status": status,
        "outcome": outcome if isinstance(outcome, str) else "unknown",
        "event_time_ms": event_time,
        "duration_ms": duration,
        "duration_source": source,
        "cpu_ms": cpu,
        "wall_ms": wall,
        "colo": colo,
        "country": country or _header(request, "cf-ipcountry"),
        "tenant": tenant or _header(request, "x-tenant-id"),
        "request_id": request_id or _header(request, "cf-ray"),
        "level": level,
        "log_endpoint": log_endpoint,
        "log_service": log_service,
        "error_code": error_code,
        "error_message": error_message,
        "truncated": obj.get("truncated") is True,
        "d1": d1,
        "entrypoint": entrypoint,
        "execution_model": execution_model,
    }
