"""`PaneSnapshot`: the metrics of one endpoint over one closed window (a 1-minute pane on the metrics topic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PaneSnapshot(BaseModel):
    """Rates are over responses (requests without a response and a clean outcome, e.g. canceled, are left out);
    null when there were none. Digests are in the `tdigest` dict format (`fastdigest.TDigest.from_dict`)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    service: str
    endpoint: str
    window_start: str = Field(description="ISO 8601 UTC, inclusive")
    window_end: str = Field(description="ISO 8601 UTC, exclusive")
    window_start_ms: int
    window_end_ms: int
    total: int = Field(description="requests, with or without a response")
    responses: int
    status: dict[str, int] = Field(description="count per HTTP status code")
    status_class: dict[str, int] = Field(description="count per class: 1xx … 5xx, none, other")
    outcome: dict[str, int]
    count_2xx: int
    count_3xx: int
    count_4xx: int
    count_5xx: int
    count_404: int
    success_rate: float | None = Field(description="(2xx + 3xx) / responses")
    error_rate: float | None = Field(description="(4xx + 5xx) / responses")
    ratio_404: float | None = Field(description="404 / responses")
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    cpu_p95_ms: float | None
    d1_queries: int
    d1_reads: int
    d1_writes: int
    d1_read_write_ratio: float | None = Field(description="reads / (reads + writes)")
    d1_p95_ms: float | None
    d1_connection_failures: int
    d1_rows_read: int
    d1_rows_written: int
    d1_rows_read_today: int = Field(description="D1 rows read by this endpoint since 00:00 UTC, this pane included")
    late_dropped: int = Field(description="records that arrived after their pane had closed, counted here")
    duration_digest: dict[str, Any] | None
    cpu_digest: dict[str, Any] | None
    d1_digest: dict[str, Any] | None
