"""The fast path of extraction: a request event with one well-formed FactoryLog, straight to its record.

Nearly every event of a capture is a request whose `logs` hold one FactoryLog string with every field of the right
type. Its record is built in one pass from typed decodes (`pipeline.fast_log`): the event's JSON text decoded by
msgspec into `TailEvent`, which reads only the fields a record needs and skips the rest (in wrangler's output most of
an event is `request.cf` and headers no record reads) — or, for an event already decoded, the dict converted into
it. Anything else — another shape, a second FactoryLog, a field of the wrong type, a bad D1 fact, no event time —
returns None and takes `Extractor`'s general path. So it never reports problems: every event it accepts gives
exactly the record the general path gives from orjson's decode (same keys, same order, same values;
tests/test_pipeline/test_fast_record.py checks that on generated, mutated and byte-fuzzed events).

Where msgspec is more lenient than orjson it is kept from deciding: text with bytes beyond ASCII is decoded only
once it is known to be valid UTF-8 (msgspec does not check the strings it skips; orjson rejects the event, and the
framer's repair then counts it), and numbers beyond the double range in skipped values are read by the general path
too (`pieces.decode_object`), so both paths accept such an event.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from pipeline.fast_log import (
    FACTORY_LOG_DECODER,
    TAIL_EVENT_DECODER,
    D1Query,
    FactoryLog,
    LogEntry,
    LogError,
    Metadata,
    TailEvent,
)
from pipeline.invocations import scope_of, scoped
from pipeline.routes import RouteTable, path_of_url, strip_query
from pipeline.timestamps import iso_to_ms
from pipeline.values import d1_fact, int_or_none, level_or_none, number_or_none, str_or_none, time_or_none

_INT64 = 2**63
_decode_log = FACTORY_LOG_DECODER.decode
_decode_event = TAIL_EVENT_DECODER.decode
_convert = msgspec.convert
_DecodeError = msgspec.DecodeError
_ValidationError = msgspec.ValidationError


_NOT_FAST: Any = object()  # marks an event the fast path leaves to the general one


def record_of_json(routes: RouteTable, raw: bytes | memoryview, ascii_text: bool = False) -> dict[str, Any] | None:
    """The record of one tail event's JSON text; None when the general path must decide (including text that is not
    JSON, or not valid UTF-8). `ascii_text`: the caller knows `raw` is ASCII (so valid UTF-8)."""
    if not ascii_text and not (type(raw) is bytes and raw.isascii()):
        try:
            str(raw, "utf-8")
        except UnicodeDecodeError:
            return None
    try:
        event = _decode_event(raw)
    except (_DecodeError, RecursionError):  # not JSON, another shape, a number out of range, too deep: the general
        # path decides
        return None
    return _record(routes, event)


def request_record(routes: RouteTable, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a decoded tail event; None for anything the general path must decide."""
    try:
        event = _convert(obj, TailEvent)
    except (_ValidationError, RecursionError):
        return None
    return _record(routes, event)


def _only_factory_log(logs: list[LogEntry] | None) -> Any:
    """The event's FactoryLog when it is a JSON string and the only one, None when there is none, `_NOT_FAST` for
    anything else (several, or one logged as an object, or a `{` string that is not a well-typed FactoryLog)."""
    if not logs:
        return None
    found = None
    for entry in logs:
        for arg in entry.message:
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


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def _record(routes: RouteTable, obj: TailEvent) -> dict[str, Any] | None:
    log: FactoryLog | None = _only_factory_log(obj.logs)
    if log is _NOT_FAST:
        return None
    event = obj.event
    if event is None:
        return None
    request = event.request
    if request is None:
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
        event_time = time_or_none(obj.event_timestamp)
        if event_time is None:
            return None
    log_service = service
    if status is None:
        response = event.response
        if response is not None:
            status = int_or_none(response.status)
    if path is not None and ("?" in path or "#" in path):
        path = strip_query(path)
    if method is None:
        method = str_or_none(request.method)
    if path is None:
        url = request.url
        if isinstance(url, str):
            path = path_of_url(url)
    cf = request.cf
    if cf is not None:
        colo, country = _text(cf.colo), _text(cf.country)
    else:
        colo = country = None
    wall = obj.wall_time
    if not (type(wall) is int and -_INT64 < wall < _INT64):
        wall = number_or_none(wall)
    cpu = obj.cpu_time
    if not (type(cpu) is int and -_INT64 < cpu < _INT64):
        cpu = number_or_none(cpu)
    source: str | None = "log"
    if duration is None:
        duration = float(wall) if wall is not None else None
        source = "wall" if wall is not None else None
    exceptions = obj.exceptions
    if exceptions:
        first = exceptions[0]
        if error_code is None:
            error_code = str_or_none(first.name)
        if error_message is None:
            error_message = first.message
    worker = obj.script_name
    if not isinstance(worker, str):
        worker = None
    outcome = obj.outcome
    entrypoint = obj.entrypoint
    execution_model = obj.execution_model
    endpoint = routes.endpoint(path, log_endpoint)
    if entrypoint is not None or execution_model != "stateless":  # rare: a DO, a named entrypoint, odd types
        if not isinstance(entrypoint, str):
            entrypoint = None
        if not isinstance(execution_model, str):
            execution_model = None
        endpoint = scoped(scope_of(entrypoint, execution_model), endpoint)
    headers = request.headers
    if headers is None:
        country, tenant, request_id = country or None, tenant or None, request_id or None
    else:
        country = country or _text(headers.cf_ipcountry)
        tenant = tenant or _text(headers.x_tenant_id)
        request_id = request_id or _text(headers.cf_ray)
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
        "country": country,
        "tenant": tenant,
        "request_id": request_id,
        "level": level,
        "log_endpoint": log_endpoint,
        "log_service": log_service,
        "error_code": error_code,
        "error_message": error_message,
        "truncated": obj.truncated is True,
        "d1": d1,
        "entrypoint": entrypoint,
        "execution_model": execution_model,
    }
