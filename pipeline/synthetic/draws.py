"""Random draws the synthetic traffic shares: version-4 UUIDs and lognormal spreads from two percentiles."""

from __future__ import annotations

import math
import random

_Z95 = 1.6448536269514722  # the standard normal's 95th percentile


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (so the same seed gives the same ids)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)  # version 4
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def lognormal_sigma(p50: float, p95: float) -> float:
    """The sigma of a lognormal distribution with this median and 95th percentile."""
    return math.log(max(p95, p50 * 1.0001) / p50) / _Z95
