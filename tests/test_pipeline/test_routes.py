"""Route templates: the endpoint half of the group key."""

from __future__ import annotations

import pytest

import pipeline.routes
from pipeline.routes import DEFAULT_ROUTE_TEMPLATES, RouteTable, path_of_url, strip_query

TEMPLATES = "/api/public/factory/templates"


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        # the spec's parameterized routes
        (f"{TEMPLATES}/tpl_4821", f"{TEMPLATES}/:slug"),
        (f"{TEMPLATES}/invoice-basic", f"{TEMPLATES}/:slug"),  # a slug that is a word is still the parameter
        (f"{TEMPLATES}/tpl_7c21/preview", f"{TEMPLATES}/:slug/preview"),  # a template matches a path's start
        (f"{TEMPLATES}/tpl_1/versions/42", f"{TEMPLATES}/:slug/versions/:id"),
        ("/api/public/factory/build-specs/run_2026_01_06_001", "/api/public/factory/build-specs/:runId"),
        ("/api/public/factory/build-specs/abc", "/api/public/factory/build-specs/:runId"),
        # shorter than a template: no parameter to fill
        (TEMPLATES, TEMPLATES),
        ("/api/public/factory", "/api/public/factory"),
        # static routes keep their words
        ("/capabilities/free", "/capabilities/free"),
        ("/api/factory/templates/import", "/api/factory/templates/import"),
        ("/api/health", "/api/health"),
        ("/api/v2/items", "/api/v2/items"),
        # ids by shape
        ("/api/users/12345", "/api/users/:id"),
        ("/api/users/6f1d2c7a-3b84-4e59-9c0e-8a2f51d7b4e3/keys", "/api/users/:id/keys"),
        ("/api/users/6F1D2C7A-3B84-4E59-9C0E-8A2F51D7B4E3", "/api/users/:id"),
        ("/api/blobs/deadbeefdeadbeef00", "/api/blobs/:id"),
        ("/api/orders/ord_9x2k1", "/api/orders/:id"),
        ("/api/runs/run-2026-01-06", "/api/runs/:id"),
        ("/api/tokens/dGhpc19pc19hX3Rva2VuX2lk", "/api/tokens/:id"),
        ("/api/orders/a1", "/api/orders/a1"),  # too short to be taken for an id
        # query string, fragment, slashes
        (f"{TEMPLATES}?category=invoices&page=2", TEMPLATES),
        (f"{TEMPLATES}/tpl_4821?x=1#top", f"{TEMPLATES}/:slug"),
        (f"{TEMPLATES}/", TEMPLATES),
        ("/api/users/42/", "/api/users/:id"),
        ("//api//users//42", "/api/users/:id"),
        ("/", "/"),
        ("", "/"),
        ("/?x=1", "/"),
    ],
)
def test_default_table(path: str, endpoint: str) -> None:
    assert RouteTable().template(strip_query(path)) == endpoint


def test_templates_of_the_spec_are_the_defaults() -> None:
    """The Performance Baselines table's six routes; `templates` gives them as the keys of their exact paths."""
    specs = "/api/public/factory/build-specs"
    caps = "/api/public/factory/capabilities"
    spec_routes = {TEMPLATES, f"{TEMPLATES}/:slug", caps, f"{caps}/free", specs, f"{specs}/:runId"}
    assert set(DEFAULT_ROUTE_TEMPLATES) == spec_routes
    assert RouteTable().templates == spec_routes
    assert RouteTable(["/a/:x/", "//b"]).templates == {"/a/:x", "/b"}


@pytest.mark.parametrize("path", ["/api/public/factory/capabilities/free", "/api/public/factory/capabilities/x1y2z3w4",
                                  "/api/public/factory/capabilities/free/more", "/api/public/factory/build-specs",
                                  "/api/public/factory/templates/tpl_1/preview"])
def test_the_static_spec_templates_give_the_keys_shape_normalizing_gives(path: str) -> None:
    """Static routes as templates only make the catalog keep them: the keys stay what they were."""
    assert RouteTable().template(path) == RouteTable(["/api/public/factory/templates/:slug",
                                                      "/api/public/factory/build-specs/:runId"]).template(path)


def test_most_specific_template_wins() -> None:
    table = RouteTable(["/a/:x", "/a/b", "/a/:x/c", "/a/:x/:y"])
    assert table.template("/a/b") == "/a/b"
    assert table.template("/a/z") == "/a/:x"
    assert table.template("/a/b/c") == "/a/:x/c"
    assert table.template("/a/b/d") == "/a/:x/:y"
    assert table.template("/a/b/d/12345") == "/a/:x/:y/:id"


def test_literal_segments_of_a_template_are_kept_even_when_they_look_like_ids() -> None:
    table = RouteTable(["/api/2024/reports/:name"])
    assert table.template("/api/2024/reports/q1") == "/api/2024/reports/:name"
    assert table.template("/api/2025/reports/q1") == "/api/:id/reports/q1"


def test_no_templates_at_all() -> None:
    table = RouteTable([])
    assert table.template(f"{TEMPLATES}/tpl_4821") == f"{TEMPLATES}/:id"
    assert table.template(f"{TEMPLATES}/export") == f"{TEMPLATES}/export"


def test_template_must_be_a_path() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        RouteTable(["api/:id"])


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.routes, "_CACHE_LIMIT", 10)
    table = RouteTable()
    for i in range(25):
        assert table.template(f"/api/users/{i}00000") == "/api/users/:id"
        assert len(table._cache) <= 10
    assert table.template("/api/users/100000/x") == "/api/users/:id/x"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://api.factory.example.com/api/public/factory/templates?category=invoices&page=2", TEMPLATES),
        ("https://api.factory.example.com/a/b#frag", "/a/b"),
        ("https://api.factory.example.com", "/"),
        ("https://api.factory.example.com?x=1", "/"),
        ("https://api.factory.example.com/", "/"),
        ("http://localhost:8787/api/health", "/api/health"),
        ("/relative/path?q", "/relative/path"),
        ("?only=query", "/"),
    ],
)
def test_path_of_url(url: str, path: str) -> None:
    assert path_of_url(url) == path


def test_strip_query() -> None:
    assert strip_query("/a?b#c") == "/a"
    assert strip_query("/a#c?b") == "/a"
    assert strip_query("/a") == "/a"
