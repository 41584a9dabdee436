"""Route templates: the endpoint key of a request path (`/templates/tpl_4821` → `/templates/:slug`).

Configured templates win (a parameter segment `:name` matches any one segment; a template also matches the start
of a longer path). What no template covers is normalized by shape: numbers, UUIDs, long hex and other id-like
segments become `:id`. Words stay words, so a static route such as `/capabilities/free` keeps its name. Which keys
stay their own endpoint (scanned paths do not) is `pipeline.endpoint_catalog`'s decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The routes of the spec's Performance Baselines table. The static ones give the keys shape-normalizing gives too;
# as templates they are always their own endpoint (`pipeline.endpoint_catalog`), even while they answer only 404s.
DEFAULT_ROUTE_TEMPLATES: tuple[str, ...] = (
    "/api/public/factory/templates",
    "/api/public/factory/templates/:slug",
    "/api/public/factory/capabilities",
    "/api/public/factory/capabilities/free",
    "/api/public/factory/build-specs",
    "/api/public/factory/build-specs/:runId",
)

_ID_SEGMENT = re.compile(
    r"""^(?:
        \d+                                   # 12345
      | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}   # uuid
      | [0-9a-fA-F]{16,}                      # long hex
      | (?=[^/]*\d)[A-Za-z0-9_.~-]{6,}        # mixed, with a digit: tpl_4821, run-2026-01-06, abc123def
      | [A-Za-z0-9_-]{22,}                    # long opaque tokens (base64url ids)
    )$""",
    re.VERBOSE,
)
_CACHE_LIMIT = 65_536


def _split(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


class RouteTable:
    """Maps request paths to route templates. Holds a bounded cache, so hot paths pay one dict lookup."""

    def __init__(self, templates: Iterable[str] = DEFAULT_ROUTE_TEMPLATES) -> None:
        self._templates: list[list[str]] = []
        for template in templates:
            if not template.startswith("/"):
                raise ValueError(f"route template must start with '/': {template!r}")
            self._templates.append(_split(template))
        # Longer and more literal templates first, so the most specific one wins.
        self._templates.sort(key=lambda segs: (-len(segs), -sum(not s.startswith(":") for s in segs)))
        self._cache: dict[str, str] = {}

    @property
    def templates(self) -> frozenset[str]:
        """The configured templates, as the endpoint keys of the paths they match exactly."""
        return frozenset("/" + "/".join(segments) for segments in self._templates)

    def template(self, path: str) -> str:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        result = self._resolve(path)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[path] = result
        return result

    def endpoint(self, path: str | None, log_endpoint: str | None) -> str:
        """A record's endpoint key: the template of its request path, else of the FactoryLog's `endpoint` (a path,
        or a name kept as is), else `unknown`."""
        if path:
            return self.template(path)
        if log_endpoint:
            return self.template(log_endpoint) if log_endpoint.startswith("/") else log_endpoint
        return "unknown"

    def _resolve(self, path: str) -> str:
        segments = _split(path)
        if not segments:
            return "/"
        out = [_normalize_segment(segment) for segment in segments]
        for i, part in enumerate(self._match(segments)):
            out[i] = part if part.startswith(":") else segments[i]
        return "/" + "/".join(out)

    def _match(self, segments: list[str]) -> list[str]:
        for template in self._templates:
            if len(template) > len(segments):
                continue
            if all(t.startswith(":") or t == s for t, s in zip(template, segments, strict=False)):
                return template
        return []


def _normalize_segment(segment: str) -> str:
    return ":id" if _ID_SEGMENT.match(segment) else segment


def path_of_url(url: str) -> str:
    """The path of an absolute or relative URL, without query string or fragment."""
    start = url.find("://")
    if start >= 0:
        slash = url.find("/", start + 3)
        if slash < 0:
            return "/"
        url = url[slash:]
    return strip_query(url) or "/"


def strip_query(path: str) -> str:
    for mark in ("?", "#"):
        cut = path.find(mark)
        if cut >= 0:
            path = path[:cut]
    return path
