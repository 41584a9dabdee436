"""`LogRecord`: the normalized record of one request — what flows on the logs topic, one per request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class D1Fact(BaseModel):
    """One D1 query of the request (from `metadata.d1`); `error_code == "connection_failed"` is a connection failure."""

    model_config = ConfigDict(extra="forbid")

    database: str | None = None
    table: str | None = None
    query_type: Literal["read", "write"]
    duration_ms: float = Field(ge=0)
    rows_read: int = Field(ge=0)
    rows_written: int = Field(ge=0)
    error_code: str | None = None


class LogRecord(BaseModel):
    """One request, normalized from a tail event and the FactoryLog(s) it carried.

    `service` + `endpoint` is the group key: `endpoint` is the route template of the path (ids and slugs replaced,
    e.g. `/api/public/factory/templates/:slug`), so it is the same with or without a structured log.
    `duration_ms` is the app's own `duration_ms` when it logged one (`duration_source="log"`), else the runtime's
    `wallTime` (`"wall"`), else null.
    A Durable Object's invocation is keyed `do:<Class>:<route>`, a named entrypoint's `<Entrypoint>:<route>`, and an
    event without a request that logged a FactoryLog by what ran (`scheduled:<cron>`, `queue:<name>`, …), so none
    of them counts as another request of the Worker's route (`pipeline/invocations.py`).
    """

    model_config = ConfigDict(extra="forbid")

    service: str = Field(description="the Worker's scriptName; for a bare FactoryLog (no tail event) its `service`")
    worker: str | None = Field(description="the Worker's scriptName")
    endpoint: str = Field(description="route template of the path: the group key with service")
    method: str | None
    path: str | None = Field(description="the request path, without the query string")
    status: int | None = Field(description="HTTP status; null when no response was produced (e.g. canceled)")
    outcome: str = Field(description="the runtime's outcome; `log` for a bare FactoryLog with no tail event")
    event_time_ms: int = Field(description="FactoryLog timestamp, else the tail event's eventTimestamp (epoch ms)")
    duration_ms: float | None
    duration_source: Literal["log", "wall"] | None
    cpu_ms: int | float | None = Field(description="the runtime's cpuTime (ms); fractional values are kept")
    wall_ms: int | float | None = Field(description="the runtime's wallTime (ms); fractional values are kept")
    colo: str | None
    country: str | None
    tenant: str | None
    request_id: str | None
    level: str | None = Field(description="FactoryLog level, upper-cased")
    log_endpoint: str | None = Field(description="the FactoryLog's own `endpoint` field, as written")
    log_service: str | None = Field(default=None, description="the FactoryLog's own `service` field, as written")
    error_code: str | None
    error_message: str | None = Field(description="FactoryLog error message, else the first exception's; a message "
                                                  "that is not a string is kept as compact JSON")
    truncated: bool = Field(description="the runtime dropped some of this request's logs (256 KB cap)")
    d1: list[D1Fact]
    entrypoint: str | None = Field(default=None, description="the tail event's `entrypoint`: the Durable Object "
                                                             "class or named entrypoint that ran; null for the "
                                                             "Worker's default handler")
    execution_model: str | None = Field(default=None, description="the tail event's `executionModel` "
                                                                  "(`stateless`, `durableObject`, …)")
    watermark_ms: int | None = Field(
        default=None,
        description="set by ingest: its event-time watermark when it read this record (max event time seen, this "
                    "record included, − allowed lateness). The record is late when its pane ends at or before it.",
    )
