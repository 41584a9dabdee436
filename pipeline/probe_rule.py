"""The uptime probe's rule: an alert per URL that fires after N consecutive failed checks and resolves at the
first successful one (the spec's "External monitoring": alert after 2 consecutive failures).

Pure and deterministic: the state of a URL is a fold over its probe results in check order, so the same results
give the same alerts live, after a restart (the probe agent folds the probe topic's history) or replayed. Times
are the checks' own `checked_at` (epoch ms): `active_since` is the first failed check of the run, `starts_at`
the check that completed N failures, `ends_at` the successful check that resolved it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from pipeline.rules.engine import fingerprint, render
from pipeline.rules.lifecycle import State, Transition
from pipeline.timestamps import ms_to_iso
from schemas.probes import ProbeRuleSpec


@dataclass(frozen=True, slots=True)
class ProbeState:
    """`inactive`: the last check passed; `pending`: failing, fewer than N in a row; `firing`."""

    state: State = "inactive"
    failures: int = 0  # consecutive failed checks
    active_since_ms: int | None = None  # the first failed check of the run
    starts_at_ms: int | None = None  # the check that fired


def step(state: ProbeState, ok: bool, checked_at_ms: int, needed: int,
         severity: str) -> tuple[ProbeState, Transition | None]:
    """One check of one URL. `needed`: consecutive failures that fire."""
    if ok:
        if state.state != "firing":
            return ProbeState(), None
        since = state.active_since_ms if state.active_since_ms is not None else checked_at_ms
        starts = state.starts_at_ms if state.starts_at_ms is not None else checked_at_ms
        return ProbeState(), Transition("resolved", severity, since, starts, checked_at_ms, checked_at_ms)
    failures = state.failures + 1
    if state.state == "firing":
        return replace(state, failures=failures), None
    since = state.active_since_ms if state.active_since_ms is not None else checked_at_ms
    if failures >= needed:
        return (ProbeState("firing", failures, since, checked_at_ms),
                Transition("firing", severity, since, checked_at_ms, None, checked_at_ms))
    return ProbeState("pending", failures, since, None), None


def url_labels(url: str) -> dict[str, str]:
    """`service` = the URL's host, `endpoint` = its path (no query), `url` = the URL itself."""
    rest = url.split("://", 1)[-1]
    host, _, path = rest.partition("/")
    return {"service": host, "endpoint": "/" + path.split("?", 1)[0].split("#", 1)[0], "url": url}


def rule_hash(spec: ProbeRuleSpec) -> str:
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


class ProbeRule:
    """The rule over every URL's results; `on_result` returns the alert events (AlertEvent dicts) it caused."""

    def __init__(self, spec: ProbeRuleSpec) -> None:
        self.spec = spec
        self.rules_hash = rule_hash(spec)
        self.states: dict[str, ProbeState] = {}

    def on_result(self, result: dict[str, Any]) -> list[dict[str, Any]]:
        url = str(result["url"])
        state = self.states.get(url, ProbeState())
        new_state, transition = step(state, bool(result["ok"]), int(result["checked_at"]), self.spec.failures,
                                     self.spec.severity)
        if new_state == ProbeState():
            self.states.pop(url, None)
        else:
            self.states[url] = new_state
        if transition is None:
            return []
        counted = state.failures if transition.change == "resolved" else new_state.failures
        return [self._alert(url, transition, counted, result)]

    def on_results(self, results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        alerts = []
        for result in results:
            alerts.extend(self.on_result(result))
        return alerts

    def _alert(self, url: str, transition: Transition, failures: int, result: dict[str, Any]) -> dict[str, Any]:
        spec = self.spec
        group = url_labels(url)
        labels = {**group, "rule": spec.name}
        resolved = transition.change == "resolved"
        value = 0.0 if resolved else float(failures)
        context = {**labels, "value": value, "threshold": float(spec.failures), "severity": spec.severity,
                   "status": result.get("status"), "latency_ms": result.get("latency_ms"),
                   "error": result.get("error") or ""}
        return {
            "v": 1,
            "rule": spec.name,
            "state": "resolved" if resolved else "firing",
            "change": transition.change,
            "severity": spec.severity,
            "labels": labels,
            "annotations": {name: render(text, context) for name, text in spec.annotations.items()},
            "fingerprint": fingerprint(spec.name, group),
            "active_since": ms_to_iso(transition.active_since_ms),
            "starts_at": ms_to_iso(transition.starts_at_ms),
            "ends_at": None if transition.ends_at_ms is None else ms_to_iso(transition.ends_at_ms),
            "value": value,
            "threshold": float(spec.failures),
            "condition": f"consecutive_failures >= {spec.failures}",
            "channels": list(spec.channels),
            "actions": list(spec.actions),
            "runbook_url": spec.runbook_url,
            "inhibited_by": [],
            "silenced_by": [],  # silences are the stream worker's: the probe does not read the silences topic
            "provenance": {
                "window_start": ms_to_iso(transition.active_since_ms),
                "window_end": ms_to_iso(transition.at_ms),
                "sample_count": failures + (1 if resolved else 0),
                "rules_hash": self.rules_hash,
                "input": None,
            },
        }


def _identity(alert: dict[str, Any]) -> tuple[str, str, str, str | None]:
    return alert["fingerprint"], alert["change"], alert["starts_at"], alert["ends_at"]


def _decided_at(alert: dict[str, Any]) -> str:
    return str(alert["ends_at"] or alert["starts_at"])


def missing_alerts(derived: Iterable[dict[str, Any]], published: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The derived transitions a crash kept off the alerts topic: not published yet and later than the latest
    published one of their alert (so a changed rule never re-publishes old history). ISO times from
    `ms_to_iso` have one fixed format, so they compare as strings."""
    seen = set()
    latest: dict[str, str] = {}
    for alert in published:
        seen.add(_identity(alert))
        at = _decided_at(alert)
        if at > latest.get(alert["fingerprint"], ""):
            latest[alert["fingerprint"]] = at
    return [alert for alert in derived
            if _identity(alert) not in seen and _decided_at(alert) > latest.get(alert["fingerprint"], "")]
