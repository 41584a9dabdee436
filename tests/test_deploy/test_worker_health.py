"""The stream workers as deployed (docker-compose, Kubernetes) pass /health's `channels` check: their environment
configures every channel their rules route to, so their /health can be 200 (a worker holds no secrets: the
channel names come from TAILWATCH_CHANNELS, and they are the channels of the notifier's channel file)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.test_deploy.checks import (
    ROOT,
    check_worker_channels,
    compose_worker_health_inputs,
    k8s_worker_health_inputs,
    load_compose,
    load_manifests,
)

COMPOSE_DATA = load_compose()
DOCS = load_manifests()
CHANNEL_FILE = ROOT / "agents" / "defaults" / "channels.yaml"


def k8s_inputs(tmp_path: Path, docs: list[tuple[str, dict]] = DOCS) -> list[tuple[str, dict[str, str], Path]]:
    return list(k8s_worker_health_inputs(docs, tmp_path))


def test_compose_workers_pass_the_channels_check() -> None:
    inputs = list(compose_worker_health_inputs(COMPOSE_DATA))
    assert len(inputs) >= 2
    for name, env, rules in inputs:
        check_worker_channels(name, env, rules)


def test_k8s_workers_pass_the_channels_check(tmp_path: Path) -> None:
    inputs = k8s_inputs(tmp_path)
    assert [name for name, _, _ in inputs] == ["tailwatch-worker/worker"]
    for name, env, rules in inputs:
        check_worker_channels(name, env, rules)


def test_the_listed_channels_are_the_notifier_channel_file(tmp_path: Path) -> None:
    """TAILWATCH_CHANNELS names exactly the channels of the channel file the notifier is given."""
    channels = set(yaml.safe_load(CHANNEL_FILE.read_text(encoding="utf-8"))["channels"])
    envs = [env for _, env, _ in compose_worker_health_inputs(COMPOSE_DATA)]
    envs += [env for _, env, _ in k8s_inputs(tmp_path)]
    for env in envs:
        assert set(env["TAILWATCH_CHANNELS"].split(",")) == channels


def test_a_worker_without_channels_fails_the_check(tmp_path: Path) -> None:
    compose = copy.deepcopy(COMPOSE_DATA)
    compose["x-tailwatch-env"].pop("TAILWATCH_CHANNELS")
    for service in compose["services"].values():
        (service.get("environment") or {}).pop("TAILWATCH_CHANNELS", None)
    name, env, rules = next(compose_worker_health_inputs(compose))
    with pytest.raises(AssertionError, match="channels check fails"):
        check_worker_channels(name, env, rules)
    docs = copy.deepcopy(DOCS)
    for _, doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "tailwatch-env":
            doc["data"]["TAILWATCH_CHANNELS"] = "pagerduty,slack-critical"  # slack-alerts, email… missing
    name, env, rules = k8s_inputs(tmp_path, docs)[0]
    with pytest.raises(AssertionError, match="'missing': \\['email', 'slack-alerts', 'slack-monitoring'\\]"):
        check_worker_channels(name, env, rules)
