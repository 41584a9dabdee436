"""A capture for the service stage's parity tests (issue 16, item 4): every endpoint of one service stays under
factory-traffic-spike's 1,000 requests a minute, but together they exceed factory-service-traffic-spike's 10,000 a
minute for 7 minutes. FactoryLog lines (what the app prints), a little out of order within the lateness."""

from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.timestamps import ms_to_iso

SPIKE_ENDPOINTS = [f"/api/station/{name}" for name in "abcdefghijkl"]  # 12, none an id-like segment
SPIKE_MINUTES = range(3, 10)  # 7 minutes at 12 × 900 = 10,800 requests a minute
SPIKE_PER_ENDPOINT = 900
BASE_PER_ENDPOINT = 20
CAPTURE_MINUTES = 14


def service_spike_capture(path: Path, start_ms: int, service: str = "factory-api") -> Path:
    lines = []
    for minute in range(CAPTURE_MINUTES):
        per_endpoint = SPIKE_PER_ENDPOINT if minute in SPIKE_MINUTES else BASE_PER_ENDPOINT
        for e, endpoint in enumerate(SPIKE_ENDPOINTS):
            for i in range(per_endpoint):
                t = start_ms + minute * 60_000 + (i * 60_000 + e * 997) // per_endpoint
                lines.append((t + (3_000 if i % 5 == 0 else 0), len(lines), orjson.dumps({
                    "timestamp": ms_to_iso(t), "level": "info", "service": service, "endpoint": endpoint,
                    "request_id": f"r{minute}-{e}-{i}", "tenant_id": "t", "method": "GET", "path": endpoint,
                    "status": 200, "duration_ms": 12.5})))
    lines.sort(key=lambda item: item[:2])
    path.write_bytes(b"\n".join(line for _, _, line in lines) + b"\n")
    return path
