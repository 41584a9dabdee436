"""Derived metrics of a pane or window, with the spec's formulas, and the snapshot dict of a closed pane."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pipeline.pane_store import ClosedPaneEvent
from pipeline.panes import ClosedPane, PaneCounts
from pipeline.sketches import Sketch, quantile, quantiles, to_dict, to_json
from pipeline.timestamps import ms_to_iso

DigestOut = Callable[[Sketch | None], Any]  # how a snapshot holds a digest: a dict (`to_dict`), or its JSON text


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def responses(counts: PaneCounts) -> int:
    return counts.total - counts.classes.get("none", 0)


def success_rate(counts: PaneCounts) -> float | None:
    return _ratio(counts.classes.get("2xx", 0) + counts.classes.get("3xx", 0), responses(counts))


def error_rate(counts: PaneCounts) -> float | None:
    return _ratio(counts.classes.get("4xx", 0) + counts.classes.get("5xx", 0), responses(counts))


def ratio_404(counts: PaneCounts) -> float | None:
    return _ratio(counts.status.get(404, 0), responses(counts))


def read_write_ratio(counts: PaneCounts) -> float | None:
    return _ratio(counts.d1_reads, counts.d1_reads + counts.d1_writes)


def derived(pane: ClosedPane, d1_rows_read_today: int) -> dict[str, Any]:
    """Every metric of a pane or window by name: what snapshots carry and what rule conditions read."""
    classes = pane.classes
    p50, p95, p99 = quantiles(pane.duration_digest, (0.50, 0.95, 0.99))
    return {
        "total": pane.total, "responses": responses(pane),
        "count_2xx": classes.get("2xx", 0), "count_3xx": classes.get("3xx", 0),
        "count_4xx": classes.get("4xx", 0), "count_5xx": classes.get("5xx", 0),
        "count_404": pane.status.get(404, 0),
        "success_rate": success_rate(pane), "error_rate": error_rate(pane), "ratio_404": ratio_404(pane),
        "avg_ms": round(pane.duration_sum_ms / pane.duration_count, 3) if pane.duration_count else None,
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "cpu_p95_ms": quantile(pane.cpu_digest, 0.95),
        "d1_queries": pane.d1_queries, "d1_reads": pane.d1_reads, "d1_writes": pane.d1_writes,
        "d1_read_write_ratio": read_write_ratio(pane), "d1_p95_ms": quantile(pane.d1_digest, 0.95),
        "d1_connection_failures": pane.d1_connection_failures, "d1_rows_read": pane.d1_rows_read,
        "d1_rows_written": pane.d1_rows_written, "d1_rows_read_today": d1_rows_read_today,
        "late_dropped": pane.late_dropped,
    }


METRIC_NAMES = frozenset(derived(ClosedPane(), 0))


def encoded_digest(sketch: Sketch | None) -> orjson.Fragment | None:
    """A digest as a snapshot about to be sent holds it: its dict's JSON text (`to_json`), which orjson writes as
    it is — the same bytes as the dict, made several times faster."""
    return None if sketch is None else orjson.Fragment(to_json(sketch))


def window_metrics(pane: ClosedPane, start_ms: int, end_ms: int, d1_rows_read_today: int,
                   digest: DigestOut = to_dict) -> dict[str, Any]:
    """The fields every pane snapshot has (`schemas.metrics.PaneMetrics`): the window, its counts and metrics; its
    digests as `digest` gives them."""
    return {
        "window_start": ms_to_iso(start_ms), "window_end": ms_to_iso(end_ms),
        "window_start_ms": start_ms, "window_end_ms": end_ms,
        "status": {str(code): pane.status[code] for code in sorted(pane.status)},
        "status_class": {name: pane.classes[name] for name in sorted(pane.classes)},
        "outcome": {name: pane.outcome[name] for name in sorted(pane.outcome)},
        **derived(pane, d1_rows_read_today),
        "duration_sum_ms": round(pane.duration_sum_ms, 3), "duration_count": pane.duration_count,
        "duration_digest": digest(pane.duration_digest), "cpu_digest": digest(pane.cpu_digest),
        "d1_digest": digest(pane.d1_digest),
    }


def snapshot(event: ClosedPaneEvent, digest: DigestOut = to_dict) -> dict[str, Any]:
    """A dict shaped like `schemas.metrics.PaneSnapshot` (with `digest=encoded_digest`: to be sent, its digests
    already JSON text, and `orjson.dumps` gives the same bytes)."""
    return {"v": 1, "service": event.service, "endpoint": event.endpoint,
            **window_metrics(event.pane, event.start_ms, event.end_ms, event.d1_rows_read_today, digest)}
