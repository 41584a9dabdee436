"""The factory API the synthetic traffic imitates: its Workers (services) and their endpoints.

The six baseline endpoints' p50/p95 and shares follow the spec's Performance Baselines.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from pipeline.synthetic.draws import uuid4
from pipeline.synthetic.profiles import D1Query, EndpointProfile

DEFAULT_SERVICES: Mapping[str, str] = {
    "gateway": "foundation-gateway-production",
    "planning-machine": "foundation-planning-machine-production",
}

TEMPLATE_SLUGS = (
    "modern-saas", "invoice-tracker", "crm-lite", "booking-portal", "inventory-manager", "helpdesk",
    "landing-page", "marketplace", "blog-cms", "event-ticketing", "fitness-tracker", "restaurant-orders",
    "project-board", "hr-onboarding", "survey-builder", "real-estate-listings",
)
MISSING_TEMPLATE_SLUGS = ("modern-sass", "undefined", "invoice-tracker-v1", "null", "crm", "old-landing")


def _fixed_run_ids(count: int) -> tuple[str, ...]:
    rng = random.Random(20260106)  # noqa: S311 - a simulation, not security
    return tuple(uuid4(rng) for _ in range(count))


BUILD_SPEC_RUN_IDS = _fixed_run_ids(40)

_LIST_QUERIES = ("", "", "", "?limit=20", "?category=saas", "?category=invoices&page=2", "?sort=popular")

DEFAULT_ENDPOINTS: tuple[EndpointProfile, ...] = (
    # The spec's Performance Baselines: p50/p95 somewhat under the targets, share = target RPS.
    EndpointProfile("GET", "/api/public/factory/templates", "factory_templates", 20, 55, 220,
                    queries=_LIST_QUERIES,
                    d1=(D1Query("templates", "read", 12, 42, (20, 120)),)),
    EndpointProfile("GET", "/api/public/factory/templates/:slug", "factory_template_detail", 10, 40, 150,
                    params=TEMPLATE_SLUGS, missing_params=MISSING_TEMPLATE_SLUGS,
                    d1=(D1Query("templates", "read", 6, 20),)),
    EndpointProfile("GET", "/api/public/factory/capabilities", "factory_capabilities", 15, 50, 210,
                    d1=(D1Query("capabilities", "read", 11, 40, (30, 60)),)),
    EndpointProfile("GET", "/api/public/factory/capabilities/free", "factory_capabilities_free", 10, 45, 200,
                    d1=(D1Query("capabilities", "read", 9, 35, (10, 25)),)),
    EndpointProfile("GET", "/api/public/factory/build-specs", "factory_build_specs", 15, 80, 300,
                    queries=("", "", "?status=approved", "?limit=50"), cpu_p50_ms=5,
                    d1=(D1Query("build_specs", "read", 20, 65, (50, 400)),)),
    EndpointProfile("GET", "/api/public/factory/build-specs/:runId", "factory_build_spec_detail", 10, 55, 180,
                    params=BUILD_SPEC_RUN_IDS,
                    d1=(D1Query("build_specs", "read", 9, 30, (2, 4)),)),
    # Other routes of the same Workers.
    EndpointProfile("GET", "/api/health", "health", 1, 4, 15, structured=False, cpu_p50_ms=1),
    EndpointProfile("OPTIONS", "/api/public/factory/templates", "factory_templates", 2, 1, 3, ok_status=204,
                    structured=False, cpu_p50_ms=0.5),
    EndpointProfile("POST", "/api/factory/templates", "factory_template_create", 2, 120, 450,
                    service="planning-machine", ok_status=201, cpu_p50_ms=8,
                    d1=(D1Query("templates", "read", 6, 20),
                        D1Query("templates", "write", 14, 45, (0, 0), (1, 1)),
                        D1Query("audit_log", "write", 5, 18, (0, 0), (1, 1)))),
    EndpointProfile("GET", "/api/factory/templates", "factory_templates_internal", 1, 30, 110,
                    service="planning-machine", queries=("?limit=1", "", "?category=saas"),
                    d1=(D1Query("templates", "read", 10, 38, (1, 120)),)),
)

