"""docker-compose.yml: structure, images, commands the CLI accepts, env, secrets, volumes, ports, healthchecks."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from agents.config_file import ENV_KEYS, load_config
from agents.stop_deadline import DEFAULT_STOP_TIMEOUT_S
from tests.test_deploy.checks import (
    COMPOSE,
    check_command,
    check_compose_service,
    env_of,
    known_env_names,
    load_compose,
    option,
    served_paths,
    spec_workers,
    tailwatch_services,
    unmerged,
)

COMPOSE_DATA = load_compose()


def check(name: str, service: dict[str, Any], compose: dict[str, Any] = COMPOSE_DATA) -> None:
    check_compose_service(name, service, compose, known_env_names(), served_paths())


@pytest.mark.parametrize("name", [name for name, _ in tailwatch_services(COMPOSE_DATA)])
def test_every_tailwatch_service_is_valid(name: str) -> None:
    service = COMPOSE_DATA["services"][name]
    reason = unmerged([str(part) for part in service["command"]])
    if reason:
        pytest.skip(reason)
    check(name, service)


def test_kafka_is_apache_kafka_4_in_kraft_mode_with_a_healthcheck_and_a_volume() -> None:
    kafka = COMPOSE_DATA["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.0\.\d+", kafka["image"])
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    assert f"kafka-data:{env['KAFKA_LOG_DIRS']}" in kafka["volumes"]
    assert "kafka-data" in COMPOSE_DATA["volumes"]
    # every tailwatch service reaches an advertised listener
    advertised = {entry.split("://", 1)[1] for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name, service in tailwatch_services(COMPOSE_DATA):
        assert env_of(service)["TAILWATCH_KAFKA_BOOTSTRAP"] in advertised, name


def test_topics_are_created_once_before_anything_else_runs() -> None:
    services = COMPOSE_DATA["services"]
    topics = services["topics"]
    assert check_command([str(p) for p in topics["command"]]).action == "create"
    assert topics["restart"] == "no"
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name, service in tailwatch_services(COMPOSE_DATA):
        if name != "topics":
            assert service["depends_on"]["topics"] == {"condition": "service_completed_successfully"}, name


def test_one_ingest_per_spec_worker_with_the_cloudflare_token_from_the_environment() -> None:
    ingests = {name: service for name, service in tailwatch_services(COMPOSE_DATA)
               if service["command"][0] == "ingest" and not getattr(check_command(service["command"]), "listen", None)}
    tailed = sorted(w for service in ingests.values() for w in check_command(service["command"]).wrangler)
    assert tailed == spec_workers()
    for name, service in ingests.items():
        assert len(check_command(service["command"]).wrangler) == 1, f"{name}: one Worker per service"
        assert service["build"]["target"] == "ingest"
        assert env_of(service)["CLOUDFLARE_API_TOKEN"].startswith("${CLOUDFLARE_API_TOKEN:?")


def test_the_push_receiver_takes_its_token_from_the_environment() -> None:
    (listener,) = [service for _, service in tailwatch_services(COMPOSE_DATA)
                   if getattr(check_command(service["command"]), "listen", None)]
    assert check_command(listener["command"]).listen == "0.0.0.0:8787"
    assert listener["ports"] == ["8787:8787"]
    assert env_of(listener)["TAILWATCH_INGEST_TOKEN"].startswith("${TAILWATCH_INGEST_TOKEN:?")


def test_workers_form_one_group_each_with_its_own_volume_and_port() -> None:
    workers = [s for _, s in tailwatch_services(COMPOSE_DATA) if s["command"][0] == "worker"]
    assert len(workers) >= 2
    assert len({option(w["command"], "--app-id") for w in workers}) == 1
    assert all(option(w["command"], "--store") == "rocksdb://" for w in workers)
    data_volumes = [w["volumes"][0].split(":")[0] for w in workers]
    assert len(set(data_volumes)) == len(workers), "workers must not share a RocksDB volume"
    host_ports = [str(port).split(":")[0] for _, s in tailwatch_services(COMPOSE_DATA) for port in s.get("ports") or []]
    assert len(set(host_ports)) == len(host_ports), "two services publish one host port"
    assert len(workers) <= int(env_of(workers[0])["TAILWATCH_PARTITIONS"]), "more workers than partitions"


def test_the_notifier_and_the_probe_are_there() -> None:
    commands = {s["command"][0] for _, s in tailwatch_services(COMPOSE_DATA)}
    assert {"notify", "probe", "worker", "ingest", "topics"} <= commands
    assert COMPOSE.name == "docker-compose.yml"


def test_workers_and_the_notifier_get_more_time_to_stop_than_their_stop_timeout() -> None:
    """Past --stop-timeout they exit by themselves (agents/stop_deadline.py), saying why: a SIGKILL before it
    would end them without a word."""
    for _, service in tailwatch_services(COMPOSE_DATA):
        if service["command"][0] in ("worker", "notify"):
            grace = service.get("stop_grace_period", "10s")  # Docker's default
            assert grace.endswith("s") and int(grace[:-1]) > DEFAULT_STOP_TIMEOUT_S, service["command"]


def test_the_notifier_serves_its_metrics_and_health() -> None:
    """Notification attempts and failures per channel are on the notifier's /metrics: it needs a web port."""
    notifier = COMPOSE_DATA["services"]["notifier"]
    port = option([str(part) for part in notifier["command"]], "--web-port")
    assert port is not None
    assert "/health" in " ".join(notifier["healthcheck"]["test"])


# ---- the checks fail on broken files --------------------------------------------------------------------------

def broken(name: str, change: Any) -> dict[str, Any]:
    service = copy.deepcopy(COMPOSE_DATA["services"][name])
    change(service)
    return service


@pytest.mark.parametrize(("name", "change", "message"), [
    ("worker-1", lambda s: s["command"].__setitem__(0, "workr"), "rejected by the CLI parser"),
    ("worker-1", lambda s: s["command"].append("--no-such-flag"), "rejected by the CLI parser"),
    ("worker-1", lambda s: s["healthcheck"].__setitem__("test", ["CMD", "curl", "http://127.0.0.1:6066/healthz"]),
     "/healthz is not served"),
    ("worker-1", lambda s: s["healthcheck"].__setitem__("test", ["CMD", "curl", "http://127.0.0.1:9999/health"]),
     "does not use the web port"),
    ("worker-1", lambda s: s.pop("healthcheck"), "no healthcheck"),
    ("worker-1", lambda s: s.__setitem__("ports", ["6066:7000"]), "is not the web port"),
    ("worker-1", lambda s: s["volumes"].__setitem__(0, "undeclared:/var/lib/tailwatch"), "not declared"),
    ("worker-1", lambda s: s["volumes"].__setitem__(1, "./agents/defaults/nope.yaml:/etc/tailwatch/rules.yaml"),
     "bind mount source"),
    ("worker-1", lambda s: s["volumes"].pop(1), "--rules /etc/tailwatch/rules.yaml is not mounted"),
    ("worker-1", lambda s: s["environment"].__setitem__("TAILWATCH_MADE_UP", "1"), "TAILWATCH_MADE_UP is named"),
    ("ingest-gateway", lambda s: s["environment"].__setitem__("CLOUDFLARE_API_TOKEN", "abc123secret"),
     "must come from the environment"),
    ("ingest-gateway", lambda s: s["build"].__setitem__("target", "ingestt"), "no stage"),
    ("probe", lambda s: s.__setitem__("command", ["probe", "--every", "60"]), "rejected by the CLI parser"),
])
def test_a_broken_service_fails(name: str, change: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        check(name, broken(name, change))


def test_the_notifier_secrets_come_from_the_environment() -> None:
    env = env_of(COMPOSE_DATA["services"]["notifier"])
    names = ["PAGERDUTY_INTEGRATION_KEY", "SLACK_CRITICAL_WEBHOOK", "SLACK_ALERTS_WEBHOOK", "SLACK_MONITORING_WEBHOOK",
             "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_TLS"]
    known = known_env_names()
    for name in names:
        assert env[name] == f"${{{name}:-}}", name
        assert re.search(rf"\b{name}\b", known), name


def managed_kafka_example() -> tuple[dict[str, str], str]:
    """The commented kafka.env example at the top of docker-compose.yml, and the compose text with it applied as
    the comment says (env_file uncommented, the bootstrap line out of x-tailwatch-env)."""
    text = COMPOSE.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("# kafka.env:") + 1
    env = {}
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        name, _, value = line[4:].partition("=")
        env[name] = value
    applied = text.replace("  # env_file: [kafka.env]", "  env_file: [kafka.env]", 1)
    applied = re.sub(r"(?m)^  TAILWATCH_KAFKA_BOOTSTRAP: .*\n", "", applied, count=1)
    return env, applied


def test_the_managed_kafka_example_is_a_working_configuration() -> None:
    env, applied = managed_kafka_example()
    assert set(env) <= set(ENV_KEYS), set(env) - set(ENV_KEYS)
    settings = load_config(None, env=env).kafka_settings()  # what every service reads from kafka.env
    assert (settings.bootstrap, str(settings.security.protocol)) == (env["TAILWATCH_KAFKA_BOOTSTRAP"], "SASL_SSL")
    assert settings.security.aiokafka_kwargs()["sasl_plain_username"] == env["TAILWATCH_KAFKA_SASL_USERNAME"]
    compose = yaml.safe_load(applied)
    for name, service in tailwatch_services(compose):
        assert service.get("env_file") == ["kafka.env"], name
        assert "TAILWATCH_KAFKA_BOOTSTRAP" not in env_of(service), f"{name}: environment would win over kafka.env"
        assert not any("PASSWORD" in key and "KAFKA" in key for key in env_of(service)), name
