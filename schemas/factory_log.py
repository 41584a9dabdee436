"""`FactoryLog`: the structured log line the app writes with `console.log(JSON.stringify(...))` (spec, Logging)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FactoryLogError(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: str
    stack: str | None = None
    code: str | None = None


class D1Query(BaseModel):
    """One D1 query, as the app reports it under `metadata.d1` (one object or a list). tailwatch's convention."""

    model_config = ConfigDict(extra="allow")

    database: str | None = None
    table: str | None = None
    query_type: Literal["read", "write"]
    duration_ms: float = Field(ge=0)
    rows_read: int = Field(default=0, ge=0)
    rows_written: int = Field(default=0, ge=0)
    error_code: str | None = None


class FactoryLog(BaseModel):
    """The spec's interface, field for field. `level` is accepted in any case (`INFO` or `info`)."""

    model_config = ConfigDict(extra="allow")

    timestamp: str
    level: Literal["INFO", "WARN", "ERROR", "DEBUG", "info", "warn", "error", "debug"]
    service: str
    endpoint: str
    request_id: str
    tenant_id: str
    method: str
    path: str
    status: int
    duration_ms: float = Field(ge=0)
    user_agent: str | None = None
    error: FactoryLogError | None = None
    metadata: dict[str, Any] | None = None
