"""Shared fixtures: the embedded broker (one per test session) and a unique topic prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.embedded_broker import EmbeddedBroker
from agents.settings import KafkaSettings
from tests.kafka_tier import apache_kafka  # noqa: F401

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLE_CAPTURE = SHARED / "research" / "wrangler-tail-sample.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def kafka_settings(embedded_broker: EmbeddedBroker) -> KafkaSettings:
    """Settings on the session's embedded broker, with topics no other test uses."""
    return KafkaSettings(bootstrap=embedded_broker.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}",
                         partitions=4, replication_factor=1)


@pytest.fixture
def sample_capture() -> Path:
    return FIXTURES / "wrangler-tail-sample.json"
