"""The main job: `tailwatch demo` runs the generated capture through the live pipeline and the spec's rules
fire and resolve where the incidents are."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_shows_the_spec_rules_firing_and_resolving() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TAILWATCH_KAFKA_BOOTSTRAP"}
    result = subprocess.run([sys.executable, "-m", "agents.cli", "--log-level", "WARNING", "demo"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line[:2].isdigit() and ":" in line[:5]]
    seen = {(row[1], row[3], row[4]) for row in rows}
    for rule, endpoint in [("factory-service-down", "/api/public/factory/build-specs/:runId"),
                           ("factory-high-error-rate", "/api/public/factory/build-specs"),
                           ("factory-404-spike", "/api/public/factory/templates/:slug"),
                           ("factory-slow-responses", "/api/public/factory/capabilities"),
                           ("d1-connection-failures", "/api/public/factory/templates"),
                           ("factory-traffic-spike", "/api/public/factory/capabilities/free")]:
        assert ("firing", rule, endpoint) in seen, rule
        assert ("resolved", rule, endpoint) in seen, rule
