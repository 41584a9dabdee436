"""The one place tailwatch constructs Kafka clients: every aiokafka producer, consumer, admin client and
AIOKafkaClient, and every Faust app's broker settings, get the bootstrap address and the security settings
(agents/kafka_security.py) here, so no command can connect without them. A test (tests/test_agents/
test_kafka_clients.py) fails when a module of agents/ or bench/ constructs an aiokafka client itself, or calls a
function that takes `security` without passing it.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from agents.kafka_security import KafkaSecurity

PLAINTEXT = KafkaSecurity()  # a local or embedded broker (tests, benchmarks); commands pass their settings' security


def producer(bootstrap: str, *, security: KafkaSecurity, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **security.aiokafka_kwargs(), **options)


def consumer(*topics: str, bootstrap: str, security: KafkaSecurity, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **security.aiokafka_kwargs(), **options)


def admin_client(bootstrap: str, *, security: KafkaSecurity, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.aiokafka_kwargs(), **options)


def client(bootstrap: str, *, security: KafkaSecurity, **options: Any) -> AIOKafkaClient:
    return AIOKafkaClient(bootstrap_servers=bootstrap, **security.aiokafka_kwargs(), **options)


def faust_broker_settings(bootstrap: str, *, security: KafkaSecurity, create_topics: bool) -> dict[str, Any]:
    """`faust.App` keywords: one `kafka://` URL per bootstrap host (Faust does not split a comma-separated list in
    one URL), the credentials, and — on a cluster where tailwatch may not create topics — no topic declarations."""
    settings: dict[str, Any] = {
        "broker": [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()],
        "broker_credentials": security.faust_credentials(),
    }
    if not create_topics:
        settings["topic_allow_declare"] = False
    return settings
