"""Panes to and from plain dicts (JSON-ready): what the stream workers keep in their changelog-backed tables.

An open pane keeps its raw values (so its digest is still built from sorted values at close); a closed pane keeps
its counts and digests in the `tdigest` dict format. `checkpoint`/`restore` carry a partition's open panes and
clocks; closed panes are stored one key each, written once when they close.
"""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

from pipeline.pane_store import PaneStore
from pipeline.panes import ClosedPane, OpenPane, PaneCounts
from pipeline.watermarks import PartitionWatermark

SEP = "\x1f"


def open_to_dict(pane: OpenPane) -> dict[str, Any]:
    return {**pane.counts_dict(), "durations": pane.durations, "cpu": pane.cpu, "d1_durations": pane.d1_durations}


def open_from_dict(data: dict[str, Any]) -> OpenPane:
    pane = OpenPane(durations=list(data["durations"]), cpu=list(data["cpu"]),
                    d1_durations=list(data["d1_durations"]))
    pane.add_counts(PaneCounts.counts_from(data))
    return pane


def _b64(sketch: bytes | None) -> str | None:
    return None if sketch is None else base64.b64encode(sketch).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def closed_to_dict(pane: ClosedPane) -> dict[str, Any]:
    """Digests as base64 of fastdigest's bytes: compact, and no conversion on the hot path."""
    return {**pane.counts_dict(), "duration_digest": _b64(pane.duration_digest),
            "cpu_digest": _b64(pane.cpu_digest), "d1_digest": _b64(pane.d1_digest)}


def closed_from_dict(data: dict[str, Any]) -> ClosedPane:
    pane = ClosedPane(duration_digest=_unb64(data["duration_digest"]), cpu_digest=_unb64(data["cpu_digest"]),
                      d1_digest=_unb64(data["d1_digest"]))
    pane.add_counts(PaneCounts.counts_from(data))
    return pane


def checkpoint(store: PaneStore, watermark: PartitionWatermark, offset: int,
               alert_states: list[list[Any]] | None = None) -> dict[str, Any]:
    """A partition's open state after the message at `offset` was applied (and its alerts' states)."""
    return {
        "v": 1,
        "offset": offset,
        "alerts": alert_states or [],
        "closed_until_ms": store.closed_until_ms,
        "producers": dict(watermark.producers),
        "finished": sorted(watermark.finished),
        "seen": dict(watermark.seen),
        "newest_seen_ms": watermark.newest_seen_ms,
        "rows_read_today": {f"{s}{SEP}{e}": list(v) for (s, e), v in store.rows_read_today.items()},
        "open": [[service, endpoint, start, open_to_dict(pane)]
                 for (service, endpoint, start), pane in sorted(store.open.items(), key=lambda kv: kv[0])],
    }


def restore(data: dict[str, Any], closed: list[tuple[str, str, int, ClosedPane]], store: PaneStore,
            watermark: PartitionWatermark) -> int:
    """Fill an empty store and watermark from a checkpoint and the closed panes; returns the checkpoint offset."""
    store.closed_until_ms = data["closed_until_ms"]
    watermark.producers = dict(data["producers"])
    watermark.finished = set(data["finished"])
    watermark.seen = dict(data.get("seen", {}))
    watermark.newest_seen_ms = data.get("newest_seen_ms")
    for key, (day, rows) in data["rows_read_today"].items():
        service, endpoint = key.split(SEP, 1)
        store.rows_read_today[(service, endpoint)] = (day, rows)
    for service, endpoint, start, pane in data["open"]:
        store.open[(service, endpoint, start)] = open_from_dict(pane)
    # Panes that closed after the checkpoint are open in it: they close again as their messages are re-applied.
    horizon = data["closed_until_ms"]
    for service, endpoint, start, closed_pane in sorted(closed, key=lambda item: item[2]):
        if horizon is not None and start + store.pane_ms <= horizon:
            store.history.setdefault((service, endpoint), deque()).append((start, closed_pane))
    offset: int = data["offset"]
    return offset
