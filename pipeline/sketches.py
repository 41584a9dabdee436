"""Latency sketches: fastdigest t-digests, built so that the same values always give the same digest.

An open pane keeps its raw values; when it closes they are sorted and turned into a digest, so the result does
not depend on arrival order or batching (live and replay agree to the bit). Closed digests merge oldest first.
Serialized in the `tdigest` dict format, so `tdigest`/`fastdigest` users downstream can merge them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastdigest import TDigest

PANE_CENTROIDS = 300  # p95 error < 0.1% on 10k lognormal values (research/sketch-bakeoff.md)


def digest_of(values: list[float]) -> TDigest | None:
    if not values:
        return None
    return TDigest.from_values(sorted(values), max_centroids=PANE_CENTROIDS)


def merge_digests(digests: Iterable[TDigest | None]) -> TDigest | None:
    present = [digest for digest in digests if digest is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    merged: TDigest = present[0].copy()
    for digest in present[1:]:
        merged.merge_inplace(digest)
    return merged


def quantile(digest: TDigest | None, q: float) -> float | None:
    if digest is None:
        return None
    return round(float(digest.quantile(q)), 3)


def to_dict(digest: TDigest | None) -> dict[str, Any] | None:
    return None if digest is None else dict(digest.to_dict())


def from_dict(data: dict[str, Any] | None) -> TDigest | None:
    return None if data is None else TDigest.from_dict(data)
