"""Building normalized records for tests: every LogRecord field, with overrides."""

from __future__ import annotations

from typing import Any

BASE_MS = 1_767_700_800_000  # 2026-01-06T12:00:00Z, a pane and day-hour boundary


def record(t_ms: int, endpoint: str = "/api/a", status: int | None = 200, duration: float | None = 10.0,
           **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "service": "svc", "worker": "w", "endpoint": endpoint, "method": "GET", "path": endpoint,
        "status": status, "outcome": "ok", "event_time_ms": t_ms, "duration_ms": duration,
        "duration_source": "log" if duration is not None else None, "cpu_ms": 2, "wall_ms": 12, "colo": None,
        "country": None, "tenant": None, "request_id": None, "level": None, "log_endpoint": None,
        "error_code": None, "error_message": None, "truncated": False, "d1": [],
    }
    out.update(fields)
    return out


def d1(query_type: str = "read", duration: float = 5.0, rows_read: int = 1, rows_written: int = 0,
       error_code: str | None = None) -> dict[str, Any]:
    return {"database": "db", "table": "t", "query_type": query_type, "duration_ms": duration,
            "rows_read": rows_read, "rows_written": rows_written, "error_code": error_code}
