"""Panes to and from plain dicts (JSON-ready): what the stream workers keep in their changelog-backed tables.

An open pane keeps its raw values (so its digest is still built from sorted values at close); a closed pane keeps
its counts and digests in the `tdigest` dict format. A partition's checkpoint (`PartitionOperator.snapshot`) carries
its open panes this way; closed panes are stored one key each, written once when they close.
"""

from __future__ import annotations

import base64
from typing import Any

from pipeline.panes import ClosedPane, OpenPane, PaneCounts

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
