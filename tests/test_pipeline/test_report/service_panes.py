"""Service panes for report tests, made independently of the service stage: the endpoint snapshots of one service
and minute merged as dicts (counts added, digests merged in endpoint order), shaped like `ServicePaneSnapshot`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.sketches import from_dict, merge_digests, quantile, quantiles, to_dict
from schemas.metrics import ServicePaneSnapshot

ADDED = ("total", "responses", "count_2xx", "count_3xx", "count_4xx", "count_5xx", "count_404", "d1_queries",
         "d1_reads", "d1_writes", "d1_connection_failures", "d1_rows_read", "d1_rows_written", "late_dropped",
         "duration_count", "d1_rows_read_today")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def merge(service: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    first = parts[0]
    out: dict[str, Any] = {name: sum(part[name] for part in parts) for name in ADDED}
    for name in ("status", "status_class", "outcome"):
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part[name])
        out[name] = dict(sorted(total.items()))
    digests = {name: merge_digests(from_dict(part[name]) for part in parts)
               for name in ("duration_digest", "cpu_digest", "d1_digest")}
    p50, p95, p99 = quantiles(digests["duration_digest"], (0.50, 0.95, 0.99))
    duration_sum = round(sum(part["duration_sum_ms"] for part in parts), 3)
    responses = out["responses"]
    out.update({
        "v": 1, "service": service, "endpoints": len(parts), "late_endpoint_panes": 0,
        "window_start": first["window_start"], "window_end": first["window_end"],
        "window_start_ms": first["window_start_ms"], "window_end_ms": first["window_end_ms"],
        "success_rate": _rate(out["count_2xx"] + out["count_3xx"], responses),
        "error_rate": _rate(out["count_4xx"] + out["count_5xx"], responses),
        "ratio_404": _rate(out["count_404"], responses),
        "avg_ms": round(duration_sum / out["duration_count"], 3) if out["duration_count"] else None,
        "duration_sum_ms": duration_sum, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "cpu_p95_ms": quantile(digests["cpu_digest"], 0.95), "d1_p95_ms": quantile(digests["d1_digest"], 0.95),
        "d1_read_write_ratio": _rate(out["d1_reads"], out["d1_reads"] + out["d1_writes"]),
        **{name: to_dict(digest) for name, digest in digests.items()},
    })
    ServicePaneSnapshot.model_validate(out)
    return out


def service_snapshots(endpoint_snapshots: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One service pane per (service, minute) of the endpoint snapshots, by (minute, service)."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for snapshot in sorted(endpoint_snapshots, key=lambda s: (s["window_start_ms"], s["service"], s["endpoint"])):
        groups.setdefault((snapshot["window_start_ms"], snapshot["service"]), []).append(snapshot)
    return [merge(service, parts) for (_start, service), parts in groups.items()]
