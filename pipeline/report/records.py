"""`RecordTotals`: what the report needs from the records themselves, because panes do not keep it.

- Top templates: requests per template slug on the spec's template endpoint (`/api/public/factory/templates/:slug`);
  a *view* is one answered 2xx/3xx (a 404 for a slug that does not exist is a request, not a view).
- Top error messages: the spec's `select(.level == "ERROR") | .error.message`, widened to every record with an
  error message (the FactoryLog's `error.message`, else the runtime exception's), since a crashed Worker logs no level.
- Build-spec accesses: requests to the list and per run id on `/api/public/factory/build-specs/:runId`.

Batch-oriented (`add` takes a list of records) and exact: plain counters, no sampling.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TEMPLATE_ROUTE = "/api/public/factory/templates/:slug"
BUILD_SPEC_ROUTE = "/api/public/factory/build-specs/:runId"
BUILD_SPEC_LIST_ROUTE = "/api/public/factory/build-specs"


def route_param(route: str, path: str | None) -> str | None:
    """The value of the route's one `:param` segment in `path` (`/t/:slug` + `/t/crm/x` → `crm`)."""
    if path is None:
        return None
    template = route.split("/")
    segments = path.split("/")
    for index, segment in enumerate(template):
        if segment.startswith(":"):
            return segments[index] if index < len(segments) and segments[index] else None
    return None


def is_view(status: int | None) -> bool:
    return status is not None and 200 <= status < 400


@dataclass(slots=True)
class ParamCounts:
    """Requests and views (2xx/3xx) per value of a route parameter."""

    requests: Counter[str] = field(default_factory=Counter)
    views: Counter[str] = field(default_factory=Counter)

    def add(self, value: str, status: int | None) -> None:
        self.requests[value] += 1
        if is_view(status):
            self.views[value] += 1

    def top(self, limit: int, name: str) -> list[dict[str, Any]]:
        ranked = sorted(self.requests, key=lambda value: (-self.views[value], -self.requests[value], value))
        return [{name: value, "views": self.views[value], "requests": self.requests[value]}
                for value in ranked[:limit]]


@dataclass(slots=True)
class RecordTotals:
    records: int = 0
    templates: ParamCounts = field(default_factory=ParamCounts)
    build_spec_runs: ParamCounts = field(default_factory=ParamCounts)
    build_spec_list_requests: int = 0
    build_spec_list_views: int = 0
    error_messages: Counter[str] = field(default_factory=Counter)
    error_endpoints: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, records: list[dict[str, Any]]) -> None:
        self.records += len(records)
        for record in records:
            endpoint = record["endpoint"]
            message = record["error_message"]
            if message is not None:
                self.error_messages[message] += 1
                self.error_endpoints.setdefault(message, Counter())[endpoint] += 1
            if endpoint == TEMPLATE_ROUTE:
                slug = route_param(TEMPLATE_ROUTE, record["path"])
                if slug is not None:
                    self.templates.add(slug, record["status"])
            elif endpoint == BUILD_SPEC_ROUTE:
                run_id = route_param(BUILD_SPEC_ROUTE, record["path"])
                if run_id is not None:
                    self.build_spec_runs.add(run_id, record["status"])
            elif endpoint == BUILD_SPEC_LIST_ROUTE:
                self.build_spec_list_requests += 1
                self.build_spec_list_views += is_view(record["status"])

    def top_errors(self, limit: int) -> list[dict[str, Any]]:
        ranked = sorted(self.error_messages.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [{"message": message, "count": count,
                 "endpoints": dict(sorted(self.error_endpoints[message].items(), key=lambda i: (-i[1], i[0])))}
                for message, count in ranked]

    def build_specs(self, limit: int) -> dict[str, Any]:
        runs = self.build_spec_runs
        return {
            "list_requests": self.build_spec_list_requests, "list_views": self.build_spec_list_views,
            "detail_requests": sum(runs.requests.values()), "detail_views": sum(runs.views.values()),
            "distinct_runs": len(runs.requests), "top_runs": runs.top(limit, "run_id"),
        }
