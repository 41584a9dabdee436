"""From one decoded top-level object to one normalized record (a dict shaped like `schemas.record.LogRecord`).

Three kinds of input object:
- a tail event with a request (`event.request`) or with a FactoryLog among its logs → one record;
- a tail event with neither (scheduled, alarm, queue, email, RPC, tail, WebSocket, overload notices,
  `event: null`) → counted as non-request by kind, never silently dropped (with a FactoryLog: a record keyed by
  the event, `pipeline.invocations`);
- a bare FactoryLog (a file of logs already extracted, as the spec's jq recipes use) → one record.
Anything else is rejected with a reason.

When several FactoryLogs are in one event, later fields override earlier ones and D1 facts add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.endpoint_catalog import EndpointCatalog
from pipeline.factory_logs import clean_factory_fields, factory_logs_in, is_factory_log
from pipeline.invocations import non_request_key, non_request_kind, scope_of, scoped
from pipeline.routes import RouteTable, path_of_url, strip_query
from pipeline.values import int_or_none, number_or_none, str_or_none, text_or_none, time_or_none

__all__ = ["Extraction", "Extractor", "is_tail_event", "non_request_kind"]

_EVENT_KEYS = frozenset(("outcome", "eventTimestamp", "logs", "scriptName", "wallTime"))
_EMPTY: dict[str, Any] = {}  # read-only stand-in for a missing `headers` or `cf`


@dataclass(slots=True)
class Extraction:
    """The result for one object: a record, or a non-request kind, or a rejection; plus field problems."""

    record: dict[str, Any] | None = None
    non_request: str | None = None
    reject_kind: str | None = None
    reject_reason: str | None = None
    problems: list[str] = field(default_factory=list)
    repaired_utf8: bool = False  # a FactoryLog string had a lone surrogate escape, read as U+FFFD


def is_tail_event(obj: dict[str, Any]) -> bool:
    return not _EVENT_KEYS.isdisjoint(obj)  # one C-level pass over the keys, no generator


def _merged_fields(logs: list[dict[str, Any]], problems: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cleaned fields of an event's FactoryLogs (later ones override earlier ones) and their D1 facts."""
    if len(logs) == 1:  # the usual case: one log, its cleaned fields as they are
        fields = clean_factory_fields(logs[0], problems)
        return fields, fields.pop("d1", None) or []
    merged: dict[str, Any] = {}
    d1: list[dict[str, Any]] = []
    for log in logs:
        cleaned = clean_factory_fields(log, problems)
        d1.extend(cleaned.pop("d1", ()))
        merged.update(cleaned)
    return merged, d1


class Extractor:
    """Normalizes decoded objects into records. Holds the route table (and its cache), and the endpoint catalog
    `LogParser` applies to the records of each batch."""

    def __init__(self, routes: RouteTable | None = None, catalog: EndpointCatalog | None = None) -> None:
        self.routes = routes or RouteTable()
        self.catalog = catalog or EndpointCatalog(self.routes.templates)

    def extract(self, obj: dict[str, Any]) -> Extraction:
        if is_tail_event(obj):
            return self._from_event(obj)
        if is_factory_log(obj):
            return self._from_bare_log(obj)
        return Extraction(reject_kind="not_an_event",
                          reject_reason="object is neither a tail event nor a FactoryLog")

    def _from_event(self, obj: dict[str, Any]) -> Extraction:
        problems: list[str] = []
        repairs: list[str] = []
        logs = factory_logs_in(obj.get("logs"), repairs)
        event = obj.get("event")
        request = event.get("request") if isinstance(event, dict) else None
        if not isinstance(request, dict):
            request = None
        if not logs and request is None:
            return Extraction(non_request=non_request_kind(event), problems=problems, repaired_utf8=bool(repairs))
        fields, d1 = _merged_fields(logs, problems)

        status = fields.get("status")
        if status is None and isinstance(event, dict):
            response = event.get("response")
            if isinstance(response, dict):
                status = int_or_none(response.get("status"))
        method = fields.get("method")
        path = fields.get("path")
        if path is not None:
            path = strip_query(path)
        headers: dict[str, Any] = _EMPTY
        cf: dict[str, Any] = _EMPTY
        if request is not None:
            if method is None:
                method = str_or_none(request.get("method"))
            if path is None:
                url = request.get("url")
                if isinstance(url, str):
                    path = path_of_url(url)
            raw_headers = request.get("headers")
            if isinstance(raw_headers, dict):
                headers = raw_headers
            raw_cf = request.get("cf")
            if isinstance(raw_cf, dict):
                cf = raw_cf

        event_time = fields.get("event_time_ms")
        if event_time is None:
            event_time = time_or_none(obj.get("eventTimestamp"))
        if event_time is None:
            return Extraction(reject_kind="no_event_time",
                              reject_reason="no FactoryLog timestamp and no eventTimestamp",
                              problems=problems, repaired_utf8=bool(repairs))

        wall = number_or_none(obj.get("wallTime"))
        duration = fields.get("duration_ms")
        source: str | None = "log"
        if duration is None:
            duration = float(wall) if wall is not None else None
            source = "wall" if wall is not None else None

        error_code = fields.get("error_code")
        error_message = fields.get("error_message")
        exceptions = obj.get("exceptions")
        if isinstance(exceptions, list) and exceptions and isinstance(exceptions[0], dict):
            first = exceptions[0]
            if error_code is None:
                error_code = str_or_none(first.get("name"))
            if error_message is None:
                error_message = text_or_none(first.get("message"))

        worker = str_or_none(obj.get("scriptName"))
        outcome = obj.get("outcome")
        log_endpoint = fields.get("endpoint")
        entrypoint = str_or_none(obj.get("entrypoint"))
        execution_model = str_or_none(obj.get("executionModel"))
        scope = scope_of(entrypoint, execution_model)
        if request is not None:
            endpoint = scoped(scope, self.routes.endpoint(path, log_endpoint))
        else:  # a cron, queue, alarm, … that logged a FactoryLog: keyed by what ran, never as an HTTP request
            endpoint = scoped(scope, non_request_key(non_request_kind(event), event))
        return Extraction(record={
            # The Worker is the service: a request that crashed before it logged must group with the ones that did.
            "service": worker or fields.get("service") or "unknown",
            "worker": worker,
            "endpoint": endpoint,
            "method": method.upper() if method else None,
            "path": path,
            "status": status,
            "outcome": outcome if isinstance(outcome, str) else "unknown",
            "event_time_ms": event_time,
            "duration_ms": duration,
            "duration_source": source,
            "cpu_ms": number_or_none(obj.get("cpuTime")),
            "wall_ms": wall,
            "colo": str_or_none(cf.get("colo")),
            "country": str_or_none(cf.get("country")) or str_or_none(headers.get("cf-ipcountry")),
            "tenant": fields.get("tenant_id") or str_or_none(headers.get("x-tenant-id")),
            "request_id": fields.get("request_id") or str_or_none(headers.get("cf-ray")),
            "level": fields.get("level"),
            "log_endpoint": log_endpoint,
            "log_service": fields.get("service"),
            "error_code": error_code,
            "error_message": error_message,
            "truncated": obj.get("truncated") is True,
            "d1": d1,
            "entrypoint": entrypoint,
            "execution_model": execution_model,
        }, problems=problems, repaired_utf8=bool(repairs))

    def _from_bare_log(self, log: dict[str, Any]) -> Extraction:
        result = Extraction()
        fields = clean_factory_fields(log, result.problems)
        event_time = fields.get("event_time_ms")
        if event_time is None:
            return Extraction(reject_kind="no_event_time", reject_reason="FactoryLog without a usable timestamp",
                              problems=result.problems)
        path = fields.get("path")
        if path is not None:
            path = strip_query(path)
        duration = fields.get("duration_ms")
        method = fields.get("method")
        result.record = {
            "service": fields.get("service") or "unknown",
            "worker": None,
            "endpoint": self.routes.endpoint(path, fields.get("endpoint")),
            "method": method.upper() if method else None,
            "path": path,
            "status": fields.get("status"),
            "outcome": "log",
            "event_time_ms": event_time,
            "duration_ms": duration,
            "duration_source": "log" if duration is not None else None,
            "cpu_ms": None,
            "wall_ms": None,
            "colo": None,
            "country": None,
            "tenant": fields.get("tenant_id"),
            "request_id": fields.get("request_id"),
            "level": fields.get("level"),
            "log_endpoint": fields.get("endpoint"),
            "log_service": fields.get("service"),
            "error_code": fields.get("error_code"),
            "error_message": fields.get("error_message"),
            "truncated": False,
            "d1": fields.get("d1", []),
            "entrypoint": None,
            "execution_model": None,
        }
        return result
