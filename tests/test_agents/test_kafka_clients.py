"""One settings object → every Kafka client: no module of agents/ or bench/ constructs an aiokafka client or a
Faust broker setting itself (agents/kafka_clients.py does), and every call in agents/ to a function that takes
the security settings passes them; `--config`/`--no-create-topics` reach every command through
`kafka_settings_from`, and the children of `run` see the same settings."""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

import faust
import pytest

from agents.commands.common import UsageError, add_kafka_args, kafka_settings_from
from agents.config_file import ConfigError
from agents.kafka_clients import faust_broker_settings
from agents.kafka_security import KafkaSecurity, SaslMechanism, Secret, SecurityProtocol
from tests.tls_certs import make_ca

ROOT = Path(__file__).resolve().parents[2]
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}
FACTORY = ROOT / "agents" / "kafka_clients.py"


def sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(node, ast.Call)]


def takes_security_with_default() -> set[str]:
    """Functions (and classes, by their __init__) of agents/ whose `security` keyword has a default: a caller that
    forgets it would silently connect in plain text."""
    names = set()
    for path in sources("agents"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "__init__" and _defaulted(item):
                        names.add(node.name)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _defaulted(node):
                names.add(node.name)
    names.discard("__init__")
    return names


def _defaulted(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = function.args
    return any(arg.arg == "security" and default is not None for arg, default in zip(args.kwonlyargs, args.kw_defaults,
                                                                                      strict=True))


def test_no_module_constructs_a_kafka_client_itself() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno}: {callee(node)}"
                 for path in sources("agents", "bench") if path != FACTORY
                 for node in calls(path) if callee(node) in CLIENT_CLASSES]
    assert offenders == [], "construct Kafka clients with agents/kafka_clients.py: " + ", ".join(offenders)


def test_every_faust_app_takes_its_broker_from_the_factory() -> None:
    apps = [(path, node) for path in sources("agents", "bench") for node in calls(path)
            if isinstance(node.func, ast.Attribute) and node.func.attr == "App"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "faust"]
    assert len(apps) >= 2  # the worker and the notifier
    for path, node in apps:
        keywords = {keyword.arg for keyword in node.keywords}
        assert "broker" not in keywords and "broker_credentials" not in keywords, f"{path}:{node.lineno}"
        spread = [keyword.value for keyword in node.keywords if keyword.arg is None]
        assert any(isinstance(value, ast.Call) and callee(value) == "faust_broker_settings" for value in spread), \
            f"{path}:{node.lineno}: faust.App without **kafka_clients.faust_broker_settings(...)"


def test_every_call_passes_the_security_settings() -> None:
    guarded = takes_security_with_default()
    assert {"Publisher", "ensure_topics", "connect_admin", "topic_messages", "start_consumer", "history",
            "read_ledger", "LedgerWriter", "SilenceFeed", "Probe", "is_embedded_broker"} <= guarded
    offenders = [f"{path.relative_to(ROOT)}:{node.lineno}: {callee(node)}"
                 for path in sources("agents") for node in calls(path)
                 if callee(node) in guarded and "security" not in {keyword.arg for keyword in node.keywords}]
    assert offenders == [], "pass security= (the command's KafkaSettings.security): " + ", ".join(offenders)


def sasl_ssl(ca: Path | None = None) -> KafkaSecurity:
    return KafkaSecurity(protocol=SecurityProtocol.SASL_SSL, ssl_ca_file=ca, sasl_mechanism=SaslMechanism.SCRAM_SHA_512,
                         sasl_username="tailwatch", sasl_password=Secret("s3cret-value"))


def test_faust_gets_one_url_per_host_and_the_credentials() -> None:
    settings = faust_broker_settings("b1:9096, b2:9096,b3:9096", security=sasl_ssl(), create_topics=True)
    assert settings["broker"] == ["kafka://b1:9096", "kafka://b2:9096", "kafka://b3:9096"]
    credentials = settings["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == ("tailwatch", "SCRAM-SHA-512")
    assert credentials.ssl_context is not None  # SASL_SSL, not SASL_PLAINTEXT
    assert "topic_allow_declare" not in settings
    existing_only = faust_broker_settings("b1:9092", security=KafkaSecurity(), create_topics=False)
    assert existing_only == {"broker": ["kafka://b1:9092"], "broker_credentials": None, "topic_allow_declare": False}
    app = faust.App("t-factory", **settings)
    assert [str(url) for url in app.conf.broker] == settings["broker"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_kafka_args(parser)
    return parser.parse_args(list(argv))


def test_settings_come_from_the_file_the_environment_and_the_flags(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("TAILWATCH_")]:
        monkeypatch.delenv(name)
    ca = make_ca(tmp_path, "ca").cert
    config = tmp_path / "tailwatch.yaml"
    config.write_text("kafka:\n  bootstrap: k1:9096,k2:9096\n  topic_prefix: prod\n"
                      "  security:\n    protocol: SASL_SSL\n    ssl:\n      ca_file: ca.pem\n"
                      "    sasl:\n      mechanism: SCRAM-SHA-512\n"
                      "      username: tw\n"
                      "      password: ${KAFKA_PASSWORD}\n")
    monkeypatch.setenv("KAFKA_PASSWORD", "from-the-env")
    monkeypatch.setenv("TAILWATCH_PARTITIONS", "6")
    settings = kafka_settings_from(parse("--config", str(config), "--topic-prefix", "flagged", "--no-create-topics"))
    assert (settings.bootstrap, settings.topic_prefix, settings.partitions, settings.create_topics) == \
           ("k1:9096,k2:9096", "flagged", 6, False)
    assert settings.security.protocol is SecurityProtocol.SASL_SSL
    assert settings.security.ssl_ca_file == ca
    assert settings.security.aiokafka_kwargs()["sasl_plain_password"] == "from-the-env"
    assert settings.child_env() == {"TAILWATCH_KAFKA_BOOTSTRAP": "k1:9096,k2:9096",
                                    "TAILWATCH_KAFKA_CREATE_TOPICS": "false", "TAILWATCH_CONFIG": str(config)}
    monkeypatch.setenv("TAILWATCH_CONFIG", str(config))  # the environment names the file for a child
    assert kafka_settings_from(parse()).topic_prefix == "prod"
    config.write_text("kafka:\n  security:\n    protocol: SASL_SSL\n")
    with pytest.raises(ConfigError, match="needs a SASL mechanism"):
        kafka_settings_from(parse())


@pytest.mark.parametrize("command", [
    ["alerts", "tail"], ["topics", "create"], ["ingest", "--stdin"], ["replay", "--topic"], ["report", "--live"],
    ["run", "--from", "-"], ["worker"], ["notify"], ["silences", "list"], ["probe", "--url", "http://127.0.0.1:9"]])
def test_a_bad_configuration_exits_2_before_connecting(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "tailwatch.yaml"
    config.write_text("kafka:\n  bootstrap: 127.0.0.1:9\n  security:\n    protocol: SASL_SSL\n"
                      "    sasl:\n      mechanism: PLAIN\n      username: tw\n      password: hunter2-inline\n"
                      "    ssl:\n      ca_file: missing-ca.pem\n")
    flag = "--tailwatch-config" if command[0] == "probe" else "--config"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAILWATCH_")}
    result = subprocess.run([sys.executable, "-m", "agents.cli", *command, flag, str(config)], capture_output=True,
                            text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert "missing-ca.pem" in result.stderr and "Traceback" not in result.stderr
    assert "hunter2-inline" not in result.stdout + result.stderr


def test_security_without_an_address_is_refused_not_sent_to_the_embedded_broker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("TAILWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TAILWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    with pytest.raises(UsageError, match=r"no kafka\.bootstrap is set .* the embedded broker speaks PLAINTEXT only"):
        kafka_settings_from(parse())
