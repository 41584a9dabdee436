"""deploy/k8s: objects well-formed, selectors match, stateful workers on volumeClaimTemplates, readiness on
/health and liveness elsewhere, commands the CLI accepts, ConfigMaps generated from agents/defaults/, secrets
referenced, not inlined."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from agents.stop_deadline import DEFAULT_STOP_TIMEOUT_S
from tests.test_deploy.checks import (
    K8S,
    ROOT,
    WORKLOADS,
    check_command,
    check_no_inline_secrets,
    check_object,
    check_selector,
    check_workload,
    known_env_names,
    load_manifests,
    option,
    pod_spec,
    served_paths,
    spec_workers,
    unmerged,
)

DOCS = load_manifests()


def configmaps(docs: list[tuple[str, dict[str, Any]]] = DOCS) -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc.get("data") or {} for _, doc in docs if doc["kind"] == "ConfigMap"}


def workloads(kind: str | None = None) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc["kind"] in WORKLOADS and (kind is None or doc["kind"] == kind)]


def args_of(doc: dict[str, Any]) -> list[str]:
    return [str(part) for part in pod_spec(doc)["containers"][0]["args"]]


def test_every_object_is_well_formed_and_listed_in_the_kustomization() -> None:
    assert DOCS
    for _, doc in DOCS:
        check_object(doc)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    images = {image["name"] for image in kustomization["images"]}
    used = {c["image"].split(":")[0] for doc in workloads() for c in pod_spec(doc)["containers"]}
    assert used <= images


@pytest.mark.parametrize("name", [doc["metadata"]["name"] for doc in workloads()])
def test_every_workload_is_valid(name: str) -> None:
    doc = next(d for d in workloads() if d["metadata"]["name"] == name)
    reason = unmerged(args_of(doc))
    if reason:
        pytest.skip(reason)
    check_selector(doc)
    check_workload(doc, configmaps(), known_env_names(), served_paths())


def test_the_push_listener_is_a_replicated_deployment_behind_a_service() -> None:
    (listener,) = [d for d in workloads("Deployment") if getattr(check_command(args_of(d)), "listen", None)]
    host, _, port = check_command(args_of(listener)).listen.rpartition(":")
    assert host == "0.0.0.0" and listener["spec"]["replicas"] >= 2
    (container,) = pod_spec(listener)["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"push": int(port)}
    env = {item["name"]: item for item in container["env"]}
    assert env["TAILWATCH_INGEST_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "tailwatch-ingest-token"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "push"}
    assert "httpGet" not in container["livenessProbe"]  # /health is 503 while Kafka is away: no restart loop
    services = [doc for _, doc in DOCS if doc["kind"] == "Service"]
    (service,) = [s for s in services if s["spec"]["selector"] == listener["spec"]["selector"]["matchLabels"]]
    assert service["spec"]["ports"] == [{"name": "push", "port": int(port), "targetPort": "push"}]


def test_workers_and_the_notifier_get_more_time_to_stop_than_their_stop_timeout() -> None:
    """Past --stop-timeout they exit by themselves (agents/stop_deadline.py), saying why: a SIGKILL before it
    would end them without a word."""
    faust_commands = [doc for doc in workloads() if args_of(doc)[0] in ("worker", "notify")]
    assert {args_of(doc)[0] for doc in faust_commands} == {"worker", "notify"}
    for doc in faust_commands:
        grace = pod_spec(doc).get("terminationGracePeriodSeconds", 30)  # Kubernetes' default
        assert grace > DEFAULT_STOP_TIMEOUT_S, doc["metadata"]["name"]


def test_the_stateful_workers() -> None:
    (worker,) = workloads("StatefulSet")
    assert option(args_of(worker), "--store") == "rocksdb://"
    assert worker["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert worker["spec"]["podManagementPolicy"] == "Parallel"
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    services = [doc for _, doc in DOCS if doc["kind"] == "Service"]
    (headless,) = [s for s in services if s["metadata"]["name"] == worker["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in headless["spec"]["selector"].items())
    partitions = int(configmaps()["tailwatch-env"]["TAILWATCH_PARTITIONS"])
    assert worker["spec"]["replicas"] <= partitions, "replicas beyond the partitions get no work"
    assert configmaps()["tailwatch-env"]["TAILWATCH_REPLICATION_FACTOR"] == "3"


def test_one_ingest_deployment_per_spec_worker_and_singletons() -> None:
    deployments = workloads("Deployment")
    listeners = [d for d in deployments if getattr(check_command(args_of(d)), "listen", None)]
    deployments = [d for d in deployments if d not in listeners]
    ingests = [d for d in deployments if args_of(d)[0] == "ingest"]
    assert sorted(check_command(args_of(d)).wrangler[0] for d in ingests) == spec_workers()
    for doc in deployments:
        assert doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"]["type"] == "Recreate", doc["metadata"]["name"]
    assert len(listeners) == 1  # the push receiver: stateless, replicated
    assert {args_of(d)[0] for d in deployments} == {"ingest", "notify", "probe"}
    (job,) = workloads("Job")
    assert args_of(job) == ["topics", "create"]


def test_secrets_are_referenced_not_inlined() -> None:
    check_no_inline_secrets(DOCS)
    refs = [item["valueFrom"]["secretKeyRef"] for doc in workloads() for c in pod_spec(doc)["containers"]
            for item in c.get("env") or [] if "valueFrom" in item]
    assert {ref["name"] for ref in refs} == {"tailwatch-cloudflare", "tailwatch-notifier", "tailwatch-kafka",
                                             "tailwatch-ingest-token"}
    readme = (ROOT / "README.md").read_text()
    for name in ("tailwatch-cloudflare", "tailwatch-notifier", "tailwatch-kafka", "tailwatch-kafka-tls",
                 "tailwatch-ingest-token"):
        assert f"create secret generic {name}" in readme


def test_every_workload_reads_kafka_credentials_from_a_secret_and_certificates_from_a_secret_volume() -> None:
    """Every workload talks to Kafka: the SASL credentials from the tailwatch-kafka Secret, the TLS files from the
    tailwatch-kafka-tls Secret mounted where the ConfigMap's TAILWATCH_KAFKA_SSL_* paths point."""
    env = configmaps()["tailwatch-env"]
    security = {key: value for key, value in env.items() if key.startswith("TAILWATCH_KAFKA_")}
    assert security["TAILWATCH_KAFKA_SECURITY_PROTOCOL"] in ("SSL", "SASL_SSL")
    assert not any("PASSWORD" in key for key in security), "a password in a ConfigMap"
    tls_paths = [value for key, value in security.items() if key.startswith("TAILWATCH_KAFKA_SSL_")]
    assert tls_paths
    for doc in workloads():
        name = doc["metadata"]["name"]
        spec = pod_spec(doc)
        volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
        for container in spec["containers"]:
            refs = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container.get("env") or []
                    if "secretKeyRef" in item.get("valueFrom", {})}
            for variable, key in (("TAILWATCH_KAFKA_SASL_USERNAME", "sasl-username"),
                                  ("TAILWATCH_KAFKA_SASL_PASSWORD", "sasl-password")):
                assert refs.get(variable, {}).get("name") == "tailwatch-kafka", f"{name}: {variable}"
                assert refs[variable]["key"] == key
            mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts") or []}
            for path in tls_paths:
                directory = path.rpartition("/")[0]
                assert directory in mounts, f"{name}: nothing mounted at {directory} (for {path})"
                assert mounts[directory].get("readOnly") is True
                volume = volumes[mounts[directory]["name"]]
                assert volume.get("secret", {}).get("secretName") == "tailwatch-kafka-tls", name


def test_configmaps_hold_the_packaged_files() -> None:
    result = subprocess.run([sys.executable, str(K8S / "render_configmaps.py"), "--check"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    maps = configmaps()
    assert maps["tailwatch-rules"]["rules.yaml"] == (ROOT / "agents/defaults/rules.yaml").read_text()
    assert maps["tailwatch-probes"]["probes.yaml"] == (ROOT / "agents/defaults/probes.yaml").read_text()
    channels = ROOT / "agents/defaults/channels.yaml"
    if channels.exists():
        assert maps["tailwatch-channels"]["channels.yaml"] == channels.read_text()


# ---- the checks fail on broken manifests ----------------------------------------------------------------------

def broken_workload(name: str, change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(next(d for d in workloads() if d["metadata"]["name"] == name))
    change(doc)
    return doc


def container(doc: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return first


@pytest.mark.parametrize(("name", "change", "message"), [
    ("tailwatch-worker", lambda d: container(d)["args"].__setitem__(0, "wroker"), "rejected by the CLI parser"),
    ("tailwatch-worker", lambda d: container(d)["readinessProbe"]["httpGet"].__setitem__("path", "/ready"),
     "/ready is not served"),
    ("tailwatch-worker", lambda d: container(d).pop("livenessProbe"), "no livenessProbe"),
    ("tailwatch-worker", lambda d: container(d)["livenessProbe"]["httpGet"].__setitem__("path", "/health"),
     "the livenessProbe asks /health"),
    ("tailwatch-worker", lambda d: container(d)["startupProbe"]["httpGet"].__setitem__("path", "/health"),
     "the startupProbe asks /health"),
    ("tailwatch-worker", lambda d: container(d)["readinessProbe"]["httpGet"].__setitem__("path", "/metrics"),
     "the readinessProbe asks /metrics, not /health"),
    ("tailwatch-notifier", lambda d: container(d)["livenessProbe"]["httpGet"].__setitem__("path", "/health"),
     "the livenessProbe asks /health"),
    ("tailwatch-worker", lambda d: container(d)["ports"][0].__setitem__("containerPort", 8080),
     "is not a containerPort"),
    ("tailwatch-worker", lambda d: d["spec"].pop("volumeClaimTemplates"), "volume data not defined"),
    ("tailwatch-worker", lambda d: next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "rules")[
        "configMap"].__setitem__("name", "tailwatch-rulez"), "not in a mounted, defined ConfigMap"),
    ("tailwatch-worker", lambda d: container(d)["args"].__setitem__(-1, "/etc/tailwatch/rules/other.yaml"),
     "has no key other.yaml"),
    ("tailwatch-worker", lambda d: container(d).__setitem__("env", [e for e in container(d)["env"]
                                                                    if e["name"] != "TAILWATCH_WEB_BIND"]),
     "cannot reach 127.0.0.1"),
    ("tailwatch-ingest-gateway", lambda d: container(d).__setitem__("image", "tailwatch:0.1.0"),
     "expected tailwatch-ingest"),
    ("tailwatch-probe", lambda d: container(d)["envFrom"][0]["configMapRef"].__setitem__("name", "nope"),
     "ConfigMap nope not defined"),
])
def test_a_broken_workload_fails(name: str, change: Any, message: str) -> None:
    doc = broken_workload(name, change)
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_workload(doc, configmaps(), known_env_names(), served_paths())


def test_a_selector_that_misses_the_pod_labels_fails() -> None:
    doc = broken_workload("tailwatch-probe", lambda d: d["spec"]["selector"]["matchLabels"].__setitem__(
        "app.kubernetes.io/name", "tailwatch-prob"))
    with pytest.raises(AssertionError, match="does not match the pod labels"):
        check_selector(doc)


def test_an_inlined_secret_fails() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "tailwatch"},
              "stringData": {"CLOUDFLARE_API_TOKEN": "abc"}}
    with pytest.raises(AssertionError, match="inlined"):
        check_no_inline_secrets([*DOCS, ("secret.yaml", secret)])
    literal = broken_workload("tailwatch-ingest-gateway", lambda d: container(d)["env"].__setitem__(
        0, {"name": "CLOUDFLARE_API_TOKEN", "value": "abc123secret"}))
    with pytest.raises(AssertionError, match="must come from a secretKeyRef"):
        check_no_inline_secrets([("ingest.yaml", literal)])
