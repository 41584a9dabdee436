"""The alert timeline: firing spans per (rule, service, endpoint) from alert events (the alerts topic's dicts); a
service-wide rule's alerts (`group_by: [service]`) have no `endpoint` label: their spans' endpoint is "".

A span starts at a `firing` event's `starts_at` and ends at the `resolved` event's `ends_at`; one with no resolve
yet is open and drawn to the end of the report's window. Escalations and de-escalations split a span into
severity segments at their deciding pane's end. Events are de-duplicated by (fingerprint, change, deciding pane),
so an alert delivered twice draws once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.timestamps import iso_to_ms


def _order(event: dict[str, Any]) -> tuple[str, int]:
    change_rank = {"firing": 0, "escalated": 1, "deescalated": 1, "repeat": 2, "resolved": 3}
    return event["provenance"]["window_end"], change_rank.get(event["change"], 4)


def alert_spans(events: Iterable[dict[str, Any]], end_ms: int | None) -> list[dict[str, Any]]:
    """Firing spans, by (service, endpoint, rule, start). `end_ms`: where open spans are drawn to."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for event in events:
        key = (event["fingerprint"], event["change"], event["provenance"]["window_end"])
        if key not in seen:
            seen.add(key)
            unique.append(event)
    unique.sort(key=_order)
    open_spans: dict[str, dict[str, Any]] = {}
    spans: list[dict[str, Any]] = []
    for event in unique:
        fingerprint = event["fingerprint"]
        span = open_spans.get(fingerprint)
        decided_ms = iso_to_ms(event["provenance"]["window_end"])
        if event["change"] == "firing" or (span is None and event["state"] == "firing"):
            span = {"rule": event["rule"], "service": event["labels"].get("service", ""),
                    "endpoint": event["labels"].get("endpoint", ""), "fingerprint": fingerprint,
                    "severity": event["severity"], "start_ms": iso_to_ms(event["starts_at"]), "end_ms": None,
                    "open": True, "segments": [{"severity": event["severity"],
                                                "start_ms": iso_to_ms(event["starts_at"]), "end_ms": None}]}
            open_spans[fingerprint] = span
            spans.append(span)
        elif span is None:
            continue  # a resolve whose firing was before what we read
        elif event["change"] in ("escalated", "deescalated"):
            span["segments"][-1]["end_ms"] = decided_ms
            span["segments"].append({"severity": event["severity"], "start_ms": decided_ms, "end_ms": None})
            span["severity"] = _worst(span["severity"], event["severity"])
        elif event["change"] == "resolved":
            ended = iso_to_ms(event["ends_at"]) if event["ends_at"] else decided_ms
            span["end_ms"] = ended
            span["open"] = False
            span["segments"][-1]["end_ms"] = ended
            del open_spans[fingerprint]
    for span in open_spans.values():
        closing = end_ms if end_ms is not None else span["segments"][-1]["start_ms"]
        span["end_ms"] = max(closing, span["start_ms"])
        span["segments"][-1]["end_ms"] = span["end_ms"]
    spans.sort(key=lambda s: (s["service"], s["endpoint"], s["rule"], s["start_ms"]))
    return spans


def alert_scope(span: dict[str, Any]) -> str:
    """What a span is about: its endpoint, or for a service-wide rule (no `endpoint` label) its service."""
    return span["endpoint"] or f'{span["service"]} (whole service)'


SEVERITY_RANK = {"CRITICAL": 3, "HIGH": 2, "MEDIUM": 1, "WARNING": 1, "LOW": 0, "INFO": 0}


def _worst(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a.upper(), 0) >= SEVERITY_RANK.get(b.upper(), 0) else b
