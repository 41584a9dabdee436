"""Typed decoding of a FactoryLog string for the extraction fast path (`pipeline.fast_record`).

msgspec decodes the JSON text of a console argument straight into `FactoryLog`, checking every type and range in
C, where the general path decodes it with orjson and checks each field in Python. It must never accept what that
path would see differently, so the types are strict and closed:
- every object type forbids unknown fields: nothing is skipped unread (msgspec does not range-check the numbers it
  skips, nor limit their depth as orjson does), so a successful decode is a JSON object orjson reads alike;
- the ten keys the spec requires must all be there: a successful decode is a FactoryLog;
- strings are `str`, numbers `int` within int64 (orjson turns bigger ones into floats) or `float` (JSON `1.0`
  stays a float, `1` an int, as with orjson); bools are not ints; `null` is None;
- any value outside these types (an `error.message` that is a number, a `metadata` list, a negative D1 row
  count, …) fails the decode, and the fast path then declines the whole event to the general path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

_INT64_MAX = 2**63 - 1

Count = Annotated[int, Meta(ge=0, le=_INT64_MAX)]
Duration = Annotated[int, Meta(ge=0, le=_INT64_MAX)] | Annotated[float, Meta(ge=0)]
Status = Annotated[int, Meta(ge=100, le=999)]


class D1Query(Struct, forbid_unknown_fields=True, gc=False):
    """One `metadata.d1` entry whose every field is valid (the general path reports the others)."""

    query_type: Literal["read", "write"]
    database: str | None = None
    table: str | None = None
    duration_ms: Duration = 0
    rows_read: Count = 0
    rows_written: Count = 0
    error_code: str | None = None


class Metadata(Struct, forbid_unknown_fields=True, gc=False):
    d1: list[D1Query] | D1Query | UnsetType = UNSET


class LogError(Struct, forbid_unknown_fields=True, gc=False):
    message: str | None = None
    code: str | None = None


class FactoryLog(Struct, forbid_unknown_fields=True, gc=False):
    """A FactoryLog with all ten required keys, every field of its expected type (`null` is None). A log without
    one of those keys fails the decode (the fast path leaves it to the general one)."""

    timestamp: str | None
    level: str | None
    service: str | None
    endpoint: str | None
    request_id: str | None
    tenant_id: str | None
    method: str | None
    path: str | None
    status: Status | None
    duration_ms: Duration | None
    user_agent: str | None = None
    error: LogError | str | None = None
    metadata: Metadata | None = None


FACTORY_LOG_DECODER = msgspec.json.Decoder(FactoryLog)


# -- the tail event around it: only the fields a record reads; everything else is skipped unread ----------------
# Containers are typed (an event whose `event`, `request`, `logs`, … has another shape fails the decode and takes
# the general path); scalars the record reads leniently (a `colo` that is not a string is None) stay `Any` and are
# checked in Python exactly as the general path checks them. `exceptions[0].message` is `str | None`: anything
# else is written out as JSON text, where an integer past 64 bits reads differently from orjson's float.


class Headers(Struct, gc=False, rename={"cf_ipcountry": "cf-ipcountry", "x_tenant_id": "x-tenant-id",
                                        "cf_ray": "cf-ray"}):
    cf_ipcountry: Any = None
    x_tenant_id: Any = None
    cf_ray: Any = None


class RequestCf(Struct, gc=False):
    colo: Any = None
    country: Any = None


class Request(Struct, gc=False):
    url: Any = None
    method: Any = None
    headers: Headers | None = None
    cf: RequestCf | None = None


class Response(Struct, gc=False):
    status: Any = None


class EventInfo(Struct, gc=False):
    request: Request | None = None
    response: Response | None = None


class LogEntry(Struct, gc=False):
    message: list[Any]


class ExceptionInfo(Struct, gc=False):
    name: Any = None
    message: str | None = None


class TailEvent(Struct, gc=False, rename="camel"):
    """The fields of a wrangler tail event (a TraceItem) that make a request's record."""

    logs: list[LogEntry] | None = None
    event: EventInfo | None = None
    event_timestamp: Any = None
    wall_time: Any = None
    cpu_time: Any = None
    exceptions: list[ExceptionInfo] | None = None
    script_name: Any = None
    outcome: Any = None
    entrypoint: Any = None
    execution_model: Any = None
    truncated: Any = None


TAIL_EVENT_DECODER = msgspec.json.Decoder(TailEvent)
