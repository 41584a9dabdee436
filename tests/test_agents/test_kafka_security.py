"""Managed-Kafka security on real Apache Kafka: `tailwatch config check` over SASL_SSL (SCRAM-SHA-512) and mutual
TLS, each failure (wrong password, unknown CA, no client certificate, no ACLs, missing topics) told apart with
exit 3 in bounded time and without the password in any output; a produce/consume round trip through
`aiokafka_kwargs()` over every listener."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.kafka_security import KafkaSecurity, SaslMechanism, Secret, SecurityProtocol
from tests.kafka_tier import ApacheKafka

pytestmark = pytest.mark.kafka

FAIL_FAST_S = 20.0  # a failing check: one connection attempt bounded by --timeout 5, plus the start-up


def config_check(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAILWATCH_")}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "agents.cli", "config", "check", "--timeout", "5", *args],
                            capture_output=True, text=True, timeout=90, env={**clean, **env})
    return result, time.monotonic() - started


def sasl_env(kafka: ApacheKafka, password: str, ca: Path | None = None) -> dict[str, str]:
    return {"TAILWATCH_KAFKA_BOOTSTRAP": kafka.sasl_ssl_bootstrap, "TAILWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TAILWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "TAILWATCH_KAFKA_SASL_USERNAME": kafka.scram_user,
            "TAILWATCH_KAFKA_SASL_PASSWORD": password, "TAILWATCH_KAFKA_SSL_CA": str(ca or kafka.ca_file)}


def mtls_config(kafka: ApacheKafka, tmp_path: Path, with_cert: bool = True) -> Path:
    (tmp_path / "key-password").write_text(kafka.client_key_password + "\n")
    client = (f"      cert_file: {kafka.client_cert}\n      key_file: {kafka.client_key}\n"
              f"      key_password_file: key-password\n") if with_cert else ""
    path = tmp_path / "tailwatch.yaml"
    path.write_text(f"kafka:\n  bootstrap: {kafka.ssl_bootstrap}\n  security:\n    protocol: SSL\n    ssl:\n"
                    f"      ca_file: {kafka.ca_file}\n{client}")
    return path


def test_check_succeeds_over_sasl_ssl(apache_kafka: ApacheKafka) -> None:
    prefix = f"sec{uuid.uuid4().hex[:8]}"
    result, _ = config_check("--topic-prefix", prefix, env=sasl_env(apache_kafka, apache_kafka.scram_password))
    assert result.returncode == 0, result.stderr
    assert f"# connected to {apache_kafka.sasl_ssl_bootstrap} over SASL_SSL, SCRAM-SHA-512 as tailwatch" \
        in result.stdout
    assert "kafka.security.sasl.password         = ***  # env TAILWATCH_KAFKA_SASL_PASSWORD" in result.stdout
    assert "# topics: 0 exist, 11 created" in result.stdout
    assert apache_kafka.scram_password not in result.stdout + result.stderr
    again, _ = config_check("--topic-prefix", prefix, "--no-create-topics",
                            env=sasl_env(apache_kafka, apache_kafka.scram_password))
    assert again.returncode == 0, again.stderr
    assert "# topics: 11 exist, 0 created" in again.stdout


def test_check_succeeds_over_mutual_tls(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    config = mtls_config(apache_kafka, tmp_path)
    result, _ = config_check("--config", str(config), "--topic-prefix", f"mtls{uuid.uuid4().hex[:8]}", env={})
    assert result.returncode == 0, result.stderr
    assert "over SSL, client certificate" in result.stdout
    assert f"kafka.security.ssl.key_password_file = key-password  # file {config}:9" in result.stdout
    assert apache_kafka.client_key_password not in result.stdout + result.stderr


@pytest.mark.parametrize("case", ["wrong password", "unknown CA", "no client certificate", "unreachable"])
def test_failures_are_told_apart_fast_and_never_show_the_password(apache_kafka: ApacheKafka, tmp_path: Path,
                                                                   case: str) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    if case == "wrong password":
        result, took = config_check(env=sasl_env(apache_kafka, wrong))
        expected = "authentication-failed: 127.0.0.1:"
        detail = "SASL SCRAM-SHA-512 authentication failed for user 'tailwatch'"
    elif case == "unknown CA":
        result, took = config_check(env=sasl_env(apache_kafka, wrong, ca=apache_kafka.unknown_ca_file))
        expected = "tls-verification-failed: 127.0.0.1:"
        detail = "TLS verification of the broker's certificate failed: unable to get local issuer certificate"
    elif case == "no client certificate":
        result, took = config_check("--config", str(mtls_config(apache_kafka, tmp_path, with_cert=False)), env={})
        expected = "authentication-failed: 127.0.0.1:"
        detail = "it requires a client certificate"
    else:
        env = sasl_env(apache_kafka, wrong)
        result, took = config_check("--bootstrap", "127.0.0.1:1", env=env)
        expected = "unreachable: 127.0.0.1:1: cannot connect"
        detail = "Connect call failed"
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"tailwatch config: Kafka check failed: {expected}" in result.stderr
    assert detail in result.stderr
    assert took < FAIL_FAST_S, took
    assert wrong not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def unsecured_token(path: Path, subject: str, lifetime_s: int) -> Path:
    """An unsecured (alg none) JWT, which the tier's OAUTHBEARER validator accepts while it is not expired."""
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    now = int(time.time())
    path.write_text(f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now - 60, 'exp': now + lifetime_s})}.")
    return path


def test_check_over_oauthbearer_reads_the_token_file(apache_kafka: ApacheKafka, tmp_path: Path) -> None:
    env = {"TAILWATCH_KAFKA_BOOTSTRAP": apache_kafka.sasl_ssl_bootstrap,
           "TAILWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TAILWATCH_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
           "TAILWATCH_KAFKA_SSL_CA": str(apache_kafka.ca_file),
           "TAILWATCH_KAFKA_SASL_OAUTH_TOKEN_FILE": str(tmp_path / "token")}
    unsecured_token(tmp_path / "token", apache_kafka.scram_user, lifetime_s=600)
    result, _ = config_check("--topic-prefix", f"oauth{uuid.uuid4().hex[:8]}", env=env)
    assert result.returncode == 0, result.stderr
    assert "over SASL_SSL, OAUTHBEARER" in result.stdout
    unsecured_token(tmp_path / "token", apache_kafka.scram_user, lifetime_s=-30)  # expired
    expired, took = config_check(env=env)
    assert expired.returncode == 3, expired.stderr
    assert "Kafka check failed: authentication-failed: 127.0.0.1:" in expired.stderr, expired.stderr
    assert took < FAIL_FAST_S


def test_user_without_acls_is_not_authorized(apache_kafka: ApacheKafka) -> None:
    env = {**sasl_env(apache_kafka, apache_kafka.reader_password),
           "TAILWATCH_KAFKA_SASL_USERNAME": apache_kafka.reader_user}
    prefix = f"acl{uuid.uuid4().hex[:8]}"
    created, _ = config_check("--topic-prefix", prefix, env=env)
    assert created.returncode == 3
    assert "Kafka check failed: not-authorized: not authorized to create (or describe) topics: " in created.stderr
    assert f"{prefix}.logs" in created.stderr and f"{prefix}-metrics-panes-changelog" in created.stderr
    existing_only, _ = config_check("--topic-prefix", prefix, "--no-create-topics", env=env)
    assert existing_only.returncode == 3
    assert "topics-missing: topics missing (kafka.create_topics is false; create them, or grant Describe on them " \
           "if they exist): " in existing_only.stderr
    assert f"{prefix}.logs" in existing_only.stderr
    assert apache_kafka.reader_password not in created.stderr + existing_only.stderr


async def round_trip(bootstrap: str, security: KafkaSecurity) -> list[bytes]:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security.aiokafka_kwargs())
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"message {i}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{topic}", **security.aiokafka_kwargs())
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(record.value for record in records)
        return got
    finally:
        await consumer.stop()


@pytest.mark.parametrize("listener", ["PLAINTEXT", "SASL_SSL", "SSL"])
def test_producer_consumer_round_trip_on_each_listener(apache_kafka: ApacheKafka, listener: str) -> None:
    if listener == "PLAINTEXT":
        bootstrap, security = apache_kafka.bootstrap, KafkaSecurity()
    elif listener == "SASL_SSL":
        bootstrap = apache_kafka.sasl_ssl_bootstrap
        security = KafkaSecurity(SecurityProtocol.SASL_SSL, ssl_ca_file=apache_kafka.ca_file,
                                 sasl_mechanism=SaslMechanism.SCRAM_SHA_512, sasl_username=apache_kafka.scram_user,
                                 sasl_password=Secret(apache_kafka.scram_password))
    else:
        bootstrap = apache_kafka.ssl_bootstrap
        security = KafkaSecurity(SecurityProtocol.SSL, ssl_ca_file=apache_kafka.ca_file,
                                 ssl_cert_file=apache_kafka.client_cert, ssl_key_file=apache_kafka.client_key,
                                 ssl_key_password=Secret(apache_kafka.client_key_password))
    assert asyncio.run(round_trip(bootstrap, security)) == [b"message 0", b"message 1", b"message 2"]


@pytest.mark.parametrize("listener", ["SASL_SSL", "SSL"])
def test_faust_worker_with_a_table_over_each_secure_listener(apache_kafka: ApacheKafka, tmp_path: Path,
                                                             listener: str) -> None:
    """Faust's consumer, producer and changelog (a table) with `faust_credentials()` from a tailwatch.yaml."""
    if listener == "SASL_SSL":
        (tmp_path / "password").write_text(apache_kafka.scram_password)
        config = tmp_path / "tailwatch.yaml"
        config.write_text(f"kafka:\n  bootstrap: {apache_kafka.sasl_ssl_bootstrap}\n  security:\n"
                          f"    protocol: SASL_SSL\n    ssl: {{ca_file: {apache_kafka.ca_file}}}\n"
                          f"    sasl: {{mechanism: SCRAM-SHA-512, username: {apache_kafka.scram_user}, "
                          f"password_file: password}}\n")
    else:
        config = mtls_config(apache_kafka, tmp_path)
    result = tmp_path / "result.json"
    topic = f"faust-{listener.lower()}-{uuid.uuid4().hex[:6]}"
    run = subprocess.run([sys.executable, "-m", "tests.faust_secure_app", str(config), topic, str(result)],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.exists(), run.stdout + run.stderr
    assert json.loads(result.read_text()) == {"values": ["message 0", "message 1", "message 2"], "count": 3}
    assert apache_kafka.scram_password not in run.stdout + run.stderr
