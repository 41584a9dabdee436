"""The metrics topics' values.

`<prefix>.metrics` (stage 1, the per-endpoint worker) carries `PaneSnapshot`s — one endpoint over one closed
1-minute pane — and, so that the service stage knows when a minute is complete, `PartitionProgress` records
(`kind: "progress"`) and `HeldAlert`s (`kind: "held_alert"`). A subscriber that wants only the endpoint metrics
skips every value with a `kind`. `<prefix>.metrics.service` (stage 2, the service stage) carries
`ServicePaneSnapshot`s: one service over one closed pane, merged from every endpoint's pane of that minute.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import AlertEvent


class PaneMetrics(BaseModel):
    """Every metric of a closed window. Rates are over responses (requests without a response and a clean outcome,
    e.g. canceled, are left out); null when there were none. Digests are in the `tdigest` dict format
    (`fastdigest.TDigest.from_dict`)."""

    model_config = ConfigDict(extra="forbid")

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
    duration_sum_ms: float = Field(default=0.0, description="sum of the durations avg_ms is over (exact merges)")
    duration_count: int = Field(default=0, description="how many durations avg_ms is over")
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
    d1_rows_read_today: int = Field(description="D1 rows read since 00:00 UTC, this pane included")
    late_dropped: int = Field(description="records that arrived after their pane had closed, counted here")
    duration_digest: dict[str, Any] | None
    cpu_digest: dict[str, Any] | None
    d1_digest: dict[str, Any] | None


class PaneSnapshot(PaneMetrics):
    """One endpoint over one closed pane (key `service|endpoint`). `d1_rows_read_today` is this endpoint's."""

    v: Literal[1] = 1
    service: str
    endpoint: str


class PartitionProgress(BaseModel):
    """Stage 1's promise for one logs-topic partition: every endpoint pane of that partition ending at or before
    `closed_until_ms` has been published before this record (on every metrics partition: it is sent to each).
    `ended`: every producer of the partition has ended (it holds nothing back until one starts again)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    kind: Literal["progress"] = "progress"
    partition: int = Field(ge=0, description="the logs-topic partition")
    partitions: int = Field(ge=1, description="how many partitions the logs topic has")
    closed_until_ms: int | None = Field(description="a pane boundary; null before anything closed")
    ended: bool


class HeldAlert(BaseModel):
    """An endpoint alert transition that a service-wide rule may inhibit (`inhibit` with `equal: [service]`): stage
    1 hands it to the service stage, which publishes it on the alerts topic once the service pane of the same minute
    has been evaluated, with `inhibited_by` set from the service rules' states."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    kind: Literal["held_alert"] = "held_alert"
    partition: int = Field(ge=0, description="the logs-topic partition whose worker decided it")
    alert: AlertEvent


class ServicePaneSnapshot(PaneMetrics):
    """One service over one closed pane (key `service`), on `<prefix>.metrics.service`: the endpoint panes of that
    minute merged (counts added, digests merged). It closes only once every logs-topic partition's progress has
    passed its end, so it is never partial. `d1_rows_read_today` is the service's."""

    v: Literal[1] = 1
    service: str
    endpoints: int = Field(ge=0, description="endpoint panes merged into it")
    late_endpoint_panes: int = Field(default=0, ge=0, description=(
        "endpoint panes of this service that reached the stage after their service pane had closed (not merged), "
        "counted here"))
