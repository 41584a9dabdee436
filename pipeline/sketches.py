"""Latency sketches: fastdigest t-digests, built so that the same values always give the same digest.

An open pane keeps its raw values; when it closes they are sorted and turned into a digest, so the result does
not depend on arrival order or batching (live and replay agree to the bit). Closed digests merge oldest first.
A closed digest is held as its compact bytes (`to_bytes`: ~16 bytes a centroid), not as a live object, which
would reserve room for all its centroids; it is decoded when a window is merged or a quantile is read.
Serialized in the `tdigest` dict format, so `tdigest`/`fastdigest` users downstream can merge them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastdigest import TDigest

PANE_CENTROIDS = 300  # p95 error < 0.1% on 10k lognormal values (research/sketch-bakeoff.md)

Sketch = bytes  # a t-digest in fastdigest's bytes format


def digest_of(values: list[float]) -> Sketch | None:
    if not values:
        return None
    encoded: bytes = TDigest.from_values(sorted(values), max_centroids=PANE_CENTROIDS).to_bytes()
    return encoded


def merge_digests(sketches: Iterable[Sketch | None]) -> Sketch | None:
    present = [sketch for sketch in sketches if sketch is not None]
    if len(present) <= 1:
        return present[0] if present else None
    merged = TDigest.from_bytes(present[0])
    for sketch in present[1:]:
        merged.merge_inplace(TDigest.from_bytes(sketch))
    encoded: bytes = merged.to_bytes()
    return encoded


def quantile(sketch: Sketch | None, q: float) -> float | None:
    if sketch is None:
        return None
    return round(float(TDigest.from_bytes(sketch).quantile(q)), 3)


def quantiles(sketch: Sketch | None, qs: tuple[float, ...]) -> list[float | None]:
    """Several quantiles of one sketch, decoding it once."""
    if sketch is None:
        return [None] * len(qs)
    digest = TDigest.from_bytes(sketch)
    return [round(float(digest.quantile(q)), 3) for q in qs]


def to_dict(sketch: Sketch | None) -> dict[str, Any] | None:
    return None if sketch is None else dict(TDigest.from_bytes(sketch).to_dict())


def from_dict(data: dict[str, Any] | None) -> Sketch | None:
    if data is None:
        return None
    encoded: bytes = TDigest.from_dict(data).to_bytes()
    return encoded
