"""The supported Kafka versions: the one `deploy/kafka/pom.xml` pins is documented as pinned, and is what the
Apache Kafka tier runs."""

from __future__ import annotations

import os
import re

import pytest

from tests.kafka_tier import KAFKA_SH, ApacheKafka

POM = KAFKA_SH.parent / "pom.xml"
README = KAFKA_SH.parent / "README.md"


def pinned_version() -> str:
    match = re.search(r"<kafka\.version>([0-9][0-9.]*)</kafka\.version>", POM.read_text())
    assert match, "pom.xml pins no kafka.version"
    return match.group(1)


def test_the_pinned_version_is_documented_as_pinned() -> None:
    version = pinned_version()
    rows = [line for line in README.read_text().splitlines() if line.startswith("| Apache Kafka")]
    pinned = [row for row in rows if "**Pinned**" in row]
    assert len(pinned) == 1, "exactly one pinned version in the supported-versions table"
    assert pinned[0].startswith(f"| Apache Kafka {version} "), pinned[0]


@pytest.mark.kafka
def test_the_tier_runs_the_pinned_version(apache_kafka: ApacheKafka) -> None:
    if os.environ.get("KAFKA_VERSION"):
        pytest.skip("KAFKA_VERSION overrides the pinned version")
    assert apache_kafka.version == pinned_version()
