"""`build_report`: every section of the report as one JSON-ready dict (keys documented in README, "Reports and
dashboards"). Counts are exact sums of pane counts; percentiles come from merged pane digests."""

from __future__ import annotations

from typing import Any

from pipeline.report.baselines import evaluate
from pipeline.report.records import RecordTotals
from pipeline.report.services import ServicePoint, ServiceTotals, service_row
from pipeline.report.snapshots import EndpointSum, PanePoint, PaneTotals
from pipeline.report.timeline import alert_spans
from pipeline.timestamps import ms_to_iso
from pipeline.windows import PANE_MS

REPORT_VERSION = 1
ERROR_RATE_FLOOR = 0.01  # the spec's Query 2: HAVING error_rate > 1.0 (%)
NO_RESPONSE = "none"  # status-code key for requests without a response and a clean outcome
FAILED = "failed"  # … and for those the Worker failed without a status (counted as 5xx)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _endpoint_row(total: EndpointSum) -> dict[str, Any]:
    p50, p95, p99 = total.percentiles()
    return {
        "service": total.service, "endpoint": total.endpoint, "requests": total.total,
        "responses": total.responses, "errors": total.errors, "count_4xx": total.count_4xx,
        "count_5xx": total.count_5xx, "error_rate": _rate(total.errors, total.responses),
        "avg_ms": _ms(total.avg_ms), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "status": _status_counts(total), "late_dropped": total.late_dropped,
    }


def _status_counts(total: EndpointSum) -> dict[str, int]:
    counts = {code: total.status[code] for code in sorted(total.status)}
    if total.no_response:
        counts[NO_RESPONSE] = total.no_response
    if total.failed_without_status:
        counts[FAILED] = total.failed_without_status
    return counts


def _series(points: list[PanePoint], minutes: list[int]) -> list[dict[str, Any]]:
    """Per endpoint, one value per minute of `minutes` (0 / null where the endpoint had no pane)."""
    index = {start: i for i, start in enumerate(minutes)}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for point in points:
        row = rows.get((point.service, point.endpoint))
        if row is None:
            empty: list[float | None] = [None] * len(minutes)
            row = rows[(point.service, point.endpoint)] = {
                "service": point.service, "endpoint": point.endpoint, "requests": [0] * len(minutes),
                "errors": [0] * len(minutes), "p50_ms": list(empty), "p95_ms": list(empty), "p99_ms": list(empty)}
        i = index[point.start_ms]
        row["requests"][i] = point.total
        row["errors"][i] = point.errors
        row["p50_ms"][i], row["p95_ms"][i], row["p99_ms"][i] = point.p50_ms, point.p95_ms, point.p99_ms
    return [rows[key] for key in sorted(rows)]


def _service_series(points: list[ServicePoint], minutes: list[int]) -> list[dict[str, Any]]:
    """Per service, one value per minute of `minutes` (0 / null where the service had no pane)."""
    index = {start: i for i, start in enumerate(minutes)}
    rows: dict[str, dict[str, Any]] = {}
    for point in points:
        row = rows.get(point.service)
        if row is None:
            empty: list[float | None] = [None] * len(minutes)
            row = rows[point.service] = {
                "service": point.service, "requests": [0] * len(minutes), "errors": [0] * len(minutes),
                "p50_ms": list(empty), "p95_ms": list(empty), "p99_ms": list(empty)}
        i = index[point.start_ms]
        row["requests"][i] = point.total
        row["errors"][i] = point.errors
        row["p50_ms"][i], row["p95_ms"][i], row["p99_ms"][i] = point.p50_ms, point.p95_ms, point.p99_ms
    return [rows[key] for key in sorted(rows)]


def _service_rows(services: ServiceTotals, endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per service, busiest first; `endpoints` counts the service's endpoint rows."""
    counts: dict[str, int] = {}
    for row in endpoints:
        counts[row["service"]] = counts.get(row["service"], 0) + 1
    rows = [service_row(total, counts.get(total.service, 0)) for total in services.service_sums()]
    return sorted(rows, key=lambda r: (-r["requests"], r["service"]))


def build_report(panes: PaneTotals, records: RecordTotals | None = None,
                 alerts: list[dict[str, Any]] | None = None, source: str = "files", top: int = 10,
                 generated_from: list[str] | None = None, skipped: int = 0,
                 services: ServiceTotals | None = None) -> dict[str, Any]:
    """`services`: the service stage's panes (None: the source has none, and the service sections are null)."""
    points = panes.ordered()
    service_points = [] if services is None else services.ordered()
    starts = [p.start_ms for p in points] + [p.start_ms for p in service_points]
    start_ms = min(starts, default=None)
    end_ms = max([p.end_ms for p in points] + [p.end_ms for p in service_points], default=None)
    minutes = [] if start_ms is None or end_ms is None else list(range(start_ms, end_ms, PANE_MS))
    sums = panes.endpoint_sums()
    endpoints = sorted((_endpoint_row(total) for total in sums),
                       key=lambda r: (-r["requests"], r["service"], r["endpoint"]))
    status: dict[str, int] = {}
    for total in sums:
        for code, count in _status_counts(total).items():
            status[code] = status.get(code, 0) + count
    requests = sum(total.total for total in sums)
    responses = sum(total.responses for total in sums)
    errors = sum(total.errors for total in sums)
    error_rates = sorted(
        ({"service": r["service"], "endpoint": r["endpoint"], "errors": r["errors"], "responses": r["responses"],
          "error_rate": r["error_rate"]} for r in endpoints
         if r["error_rate"] is not None and r["errors"] / r["responses"] > ERROR_RATE_FLOOR),
        key=lambda r: (-r["errors"] / r["responses"], r["service"], r["endpoint"]))
    slowest = sorted(
        ({"service": r["service"], "endpoint": r["endpoint"], "avg_ms": r["avg_ms"], "p95_ms": r["p95_ms"],
          "requests": r["requests"]} for r in endpoints if r["p95_ms"] is not None),
        key=lambda r: (-r["p95_ms"], r["service"], r["endpoint"]))
    return {
        "v": REPORT_VERSION, "source": source, "inputs": generated_from or [], "skipped_messages": skipped,
        "window": {"start": None if start_ms is None else ms_to_iso(start_ms),
                   "end": None if end_ms is None else ms_to_iso(end_ms),
                   "start_ms": start_ms, "end_ms": end_ms, "minutes": len(minutes)},
        "totals": {"requests": requests, "responses": responses, "errors": errors,
                   "error_rate": _rate(errors, responses), "endpoints": len(sums), "panes": len(points),
                   "late_dropped": sum(total.late_dropped for total in sums),
                   "records_read": None if records is None else records.records,
                   "services": None if services is None else len(services.by_service())},
        "services": None if services is None else _service_rows(services, endpoints),
        "endpoints": endpoints,
        "error_rates": error_rates,
        "slowest": slowest,
        "status_codes": [{"status": code, "count": count, "share": _rate(count, requests)}
                         for code, count in sorted(status.items(), key=lambda item: (-item[1], item[0]))],
        "top_templates": None if records is None else records.templates.top(top, "slug"),
        "top_errors": None if records is None else records.top_errors(top),
        "build_specs": None if records is None else records.build_specs(top),
        "baselines": evaluate(points, len(minutes)),
        "series": {"minutes": minutes, "endpoints": _series(points, minutes),
                   "services": None if services is None else _service_series(service_points, minutes)},
        "alerts": None if alerts is None else {"events": len(alerts), "spans": alert_spans(alerts, end_ms)},
    }
