"""Checks of the deployment files (no Docker engine or cluster here): each raises AssertionError naming what is
wrong, so a test can also prove that a broken file fails."""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from agents.cli import COMMANDS, build_parser
from agents.health import configured_channels, rule_channels
from agents.rules_files import load_rules
from pipeline.health import HealthFacts, HealthLimits, evaluate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
SPEC = ROOT.parent.parent / "shared" / "spec" / "factory-monitoring.md"
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|WEBHOOK|SMTP_USER")
FILE_OPTIONS = ("--rules", "--config", "--channels")


def spec_workers() -> list[str]:
    """The Cloudflare Workers the spec tails (`wrangler tail <name>`)."""
    text = SPEC.read_text(encoding="utf-8") if SPEC.exists() else ""
    names = sorted(set(re.findall(r"wrangler tail ([a-z0-9-]+)", text)))
    return names or ["foundation-gateway-production", "foundation-planning-machine-production"]


def served_paths() -> set[str]:
    """The paths the worker's web server serves: its `app.page(...)` routes, else the documented interface."""
    found = set()
    for path in (ROOT / "agents").rglob("*.py"):
        found.update(re.findall(r"\.page\(\s*[\"'](/[^\"']*)[\"']", path.read_text(encoding="utf-8")))
    return found or {"/health", "/metrics"}


def known_env_names() -> str:
    """Text in which every environment variable a deployment sets must be named: README and the code."""
    parts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    parts += [path.read_text(encoding="utf-8") for path in (ROOT / "agents").rglob("*.py")]
    return "\n".join(parts)


def unmerged(command: list[str]) -> str | None:
    """A reason to skip a service whose subcommand lives on another branch not merged yet (the notifier)."""
    if command and command[0] == "notify" and "notify" not in COMMANDS:
        return "`tailwatch notify` is not in this branch's CLI yet (the notifier branch)"
    return None


def check_command(command: list[str]) -> Any:
    """The args a container passes to the `tailwatch` entrypoint must be accepted by its parser."""
    assert command, "no command"
    try:
        args = build_parser().parse_args(command)
    except SystemExit as error:
        raise AssertionError(f"`tailwatch {shlex.join(command)}` is rejected by the CLI parser") from error
    assert args.command == command[0]
    return args


def option(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def check_env_names(names: list[str], known: str) -> None:
    for name in names:
        assert re.search(rf"\b{re.escape(name)}\b", known), f"env {name} is named nowhere in README.md or agents/"


def check_url(url: str, port: str, paths: set[str]) -> None:
    match = re.match(r"https?://(127\.0\.0\.1|localhost):(\d+)(/[^\s'\"]*)", url)
    assert match, f"not a local URL: {url}"
    assert match.group(2) == port, f"{url} does not use the web port {port}"
    assert match.group(3) in paths, f"{url}: {match.group(3)} is not served (served: {sorted(paths)})"


# ---- docker-compose ------------------------------------------------------------------------------------------

def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "no services"
    return data


def dockerfile_stages(path: Path = DOCKERFILE) -> list[str]:
    return re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", path.read_text(encoding="utf-8"), re.MULTILINE | re.IGNORECASE)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def check_compose_service(name: str, service: dict[str, Any], compose: dict[str, Any], known: str,
                          paths: set[str]) -> None:
    """A tailwatch service: built from deploy/Dockerfile, a real subcommand, known env, secrets from the
    environment, mounts that exist, a healthcheck on a served path of its web port."""
    build = service.get("build")
    assert isinstance(build, dict), f"{name}: no build"
    dockerfile = ROOT / build.get("context", ".") / build["dockerfile"]
    assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
    assert build.get("target") in dockerfile_stages(dockerfile), f"{name}: no stage {build.get('target')!r}"
    command = [str(part) for part in service.get("command") or []]
    check_command(command)
    env = env_of(service)
    check_env_names(list(env), known)
    for key, value in env.items():
        if SECRET_NAME.search(key):
            assert re.fullmatch(rf"\$\{{{key}(:?[-?][^}}]*)?\}}", value), \
                f"{name}: {key} must come from the environment (${{{key}…}}), not be written here"
    mounted = {}
    for volume in service.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        if source.startswith(("./", "/", "../")):
            assert (ROOT / source).exists(), f"{name}: bind mount source {source} missing"
        else:
            assert source in (compose.get("volumes") or {}), f"{name}: volume {source} not declared"
        mounted[target] = source
    for flag in FILE_OPTIONS:
        value = option(command, flag)
        if value is not None and value.startswith("/"):
            assert value in mounted or any(value.startswith(t + "/") for t in mounted), \
                f"{name}: {flag} {value} is not mounted"
    data_dir = option(command, "--data-dir")
    if data_dir is not None:
        owners = [source for target, source in mounted.items() if data_dir.startswith(target.rstrip("/") + "/")
                  or data_dir == target]
        assert owners and owners[0] in (compose.get("volumes") or {}), f"{name}: --data-dir {data_dir} not on a volume"
    port = option(command, "--web-port")
    if port is not None:
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name}: serves a web port but has no healthcheck"
        urls = re.findall(r"https?://[^\s'\"]+", " ".join(map(str, test)))
        assert urls, f"{name}: healthcheck names no URL"
        for url in urls:
            check_url(url, port, paths)
        for mapping in service.get("ports") or []:
            assert str(mapping).rsplit(":", 1)[-1] == port, f"{name}: port {mapping} is not the web port {port}"
        assert env.get("TAILWATCH_WEB_BIND") == "0.0.0.0", f"{name}: the web port must listen beyond 127.0.0.1"


def tailwatch_services(compose: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in compose["services"].items():
        if "build" in service:
            yield name, service


# ---- Kubernetes ----------------------------------------------------------------------------------------------

def load_manifests(directory: Path = K8S) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


WORKLOADS = {"Deployment", "StatefulSet", "Job", "DaemonSet"}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def check_object(doc: dict[str, Any]) -> None:
    for key in ("apiVersion", "kind", "metadata"):
        assert key in doc, f"object without {key}: {doc}"
    assert doc["metadata"].get("name"), f"{doc['kind']} without a name"
    if doc["kind"] != "Namespace":
        assert doc["metadata"].get("namespace") == "tailwatch", f"{doc['kind']} {doc['metadata']['name']}: namespace"


def check_selector(doc: dict[str, Any]) -> None:
    name = doc["metadata"]["name"]
    if doc["kind"] == "Job":
        return
    match = doc["spec"]["selector"]["matchLabels"]
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert match and all(labels.get(k) == v for k, v in match.items()), \
        f"{name}: selector {match} does not match the pod labels {labels}"


def check_no_inline_secrets(docs: list[tuple[str, dict[str, Any]]]) -> None:
    for file, doc in docs:
        assert doc["kind"] != "Secret", f"{file}: a Secret object is inlined; reference one created apart"
        if doc["kind"] in WORKLOADS:
            for container in pod_spec(doc)["containers"]:
                for item in container.get("env") or []:
                    if SECRET_NAME.search(item["name"]):
                        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                        assert ref and "value" not in item, \
                            f"{file}: {item['name']} must come from a secretKeyRef, not a literal value"


def check_workload(doc: dict[str, Any], configmaps: dict[str, dict[str, str]], known: str,
                   paths: set[str]) -> None:
    name = doc["metadata"]["name"]
    spec = pod_spec(doc)
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    claims = {c["metadata"]["name"] for c in doc["spec"].get("volumeClaimTemplates") or []}
    for container in spec["containers"]:
        image = container["image"].split(":")[0]
        command = [str(part) for part in container.get("args") or []]
        assert "command" not in container, f"{name}: keep the image's `tailwatch` entrypoint; pass args"
        check_command(command)
        wanted_image = "tailwatch-ingest" if command[0] == "ingest" else "tailwatch"
        assert image == wanted_image, f"{name}: image {image}, expected {wanted_image}"
        for ref in container.get("envFrom") or []:
            cm = (ref.get("configMapRef") or {}).get("name")
            assert cm in configmaps, f"{name}: envFrom ConfigMap {cm} not defined"
            check_env_names(list(configmaps[cm]), known)
        check_env_names([item["name"] for item in container.get("env") or []], known)
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
        for mount_name in mounts.values():
            assert mount_name in volumes or mount_name in claims, f"{name}: volume {mount_name} not defined"
        for flag in FILE_OPTIONS:
            value = option(command, flag)
            if value is None:
                continue
            directory, _, filename = value.rpartition("/")
            volume = volumes.get(mounts.get(directory, ""), {})
            cm = (volume.get("configMap") or {}).get("name")
            assert cm in configmaps, f"{name}: {flag} {value} is not in a mounted, defined ConfigMap"
            assert filename in configmaps[cm], f"{name}: ConfigMap {cm} has no key {filename}"
        data_dir = option(command, "--data-dir")
        if data_dir is not None:
            assert doc["kind"] == "StatefulSet", f"{name}: a stateful worker must be a StatefulSet"
            assert any(data_dir.startswith(path.rstrip("/") + "/") and mounts[path] in claims for path in mounts), \
                f"{name}: --data-dir {data_dir} is not on a volumeClaimTemplate"
        port = option(command, "--web-port")
        if port is not None:
            named = {p["name"]: str(p["containerPort"]) for p in container.get("ports") or []}
            assert port in named.values(), f"{name}: --web-port {port} is not a containerPort"
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if kind == "startupProbe" and kind not in container:
                    continue
                probe = container.get(kind, {}).get("httpGet")
                assert probe, f"{name}: no {kind} on the web port"
                target = str(named.get(str(probe["port"]), probe["port"]))
                check_url(f"http://127.0.0.1:{target}{probe['path']}", port, paths)
                check_probe_path(name, kind, probe["path"])
            env = {item["name"]: item.get("value") for item in container.get("env") or []}
            assert env.get("TAILWATCH_WEB_BIND") == "0.0.0.0", f"{name}: the kubelet cannot reach 127.0.0.1"


def check_probe_path(name: str, kind: str, path: str) -> None:
    """Readiness asks /health; liveness (and the startup probe that gates it) must not: /health is 503 while Kafka
    is away, while a worker catches up (lag over the bound) or while ingest is silent, and a restart cures none of
    these, it starts the catch-up over (README, "Health and metrics")."""
    if kind == "readinessProbe":
        assert path == "/health", f"{name}: the readinessProbe asks {path}, not /health"
    else:
        assert path != "/health", f"{name}: the {kind} asks /health: a degraded worker would be restarted in a loop"


# ---- the workers' /health `channels` check with a deployment's environment ------------------------------------

def channels_check(env: dict[str, str], rules_path: Path) -> tuple[bool, dict[str, Any]]:
    """The `channels` check of /health as a worker started with `env` and the rule file at `rules_path` decides it:
    (passes, its details)."""
    facts = HealthFacts(broker_ok=True, agents_running=True, started_ms=0, last_message_ms=0,
                        channels_configured=configured_channels(env),
                        channels_required=rule_channels(load_rules(rules_path)))
    body = evaluate(facts, HealthLimits(), now_ms=0).body
    return bool(body["checks"]["channels"]), body["details"]["channels"]


def check_worker_channels(name: str, env: dict[str, str], rules_path: Path) -> None:
    ok, details = channels_check(env, rules_path)
    assert ok, f"{name}: /health's channels check fails with this environment: {details}"


def compose_worker_health_inputs(compose: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], Path]]:
    """Each compose stream worker: its environment and the host file mounted at its --rules."""
    for name, service in tailwatch_services(compose):
        command = [str(part) for part in service["command"]]
        if command[0] != "worker":
            continue
        rules = option(command, "--rules")
        assert rules, f"{name}: no --rules"
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service.get("volumes") or []}
        yield name, env_of(service), ROOT / mounts[rules]


def k8s_worker_health_inputs(docs: list[tuple[str, dict[str, Any]]],
                             directory: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """Each Kubernetes stream worker container: its environment (envFrom ConfigMaps, then env values) and its
    --rules file as the mounted ConfigMap holds it (written under `directory`)."""
    configmaps = {doc["metadata"]["name"]: doc.get("data") or {} for _, doc in docs if doc["kind"] == "ConfigMap"}
    for _, doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(doc)
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for container in spec["containers"]:
            command = [str(part) for part in container.get("args") or []]
            if command[:1] != ["worker"]:
                continue
            env: dict[str, str] = {}
            for ref in container.get("envFrom") or []:
                env.update({str(k): str(v) for k, v in configmaps[ref["configMapRef"]["name"]].items()})
            env.update({item["name"]: str(item["value"]) for item in container.get("env") or [] if "value" in item})
            rules = option(command, "--rules")
            assert rules, f"{doc['metadata']['name']}: no --rules"
            mount_dir, _, filename = rules.rpartition("/")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
            configmap = volumes[mounts[mount_dir]]["configMap"]["name"]
            path = directory / f"{doc['metadata']['name']}-{container['name']}-{filename}"
            path.write_text(configmaps[configmap][filename], encoding="utf-8")
            yield f"{doc['metadata']['name']}/{container['name']}", env, path


def check_dockerfile(targets: set[str], path: Path = DOCKERFILE) -> None:
    """python:3.12-slim, COPY sources that exist and are not ignored, `targets` (the stages images are built
    from) run as a non-root user, the entrypoint is `tailwatch`."""
    text = path.read_text(encoding="utf-8")
    lines = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()]
    froms = [line for line in lines if line.upper().startswith("FROM ")]
    assert froms, "no FROM"
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), f.split()[1]) for f in froms]
    assert any(re.fullmatch(r"python:3\.12-slim(-\w+)?", base) for base in bases), f"no python:3.12-slim in {bases}"
    ignore_file = path.parent.parent / ".dockerignore"
    ignored = [p.strip() for p in ignore_file.read_text().splitlines() if p.strip() and not p.startswith("#")] \
        if ignore_file.exists() else []
    context = path.parent.parent
    for line in lines:
        if not line.upper().startswith(("COPY ", "ADD ")) or "--from=" in line:
            continue
        parts = [p for p in line.split()[1:] if not p.startswith("--")]
        for source in parts[:-1]:
            assert (context / source).exists(), f"COPY source {source} does not exist in the build context"
            assert not any(fnmatch.fnmatch(source.rstrip("/"), pattern) for pattern in ignored), \
                f"COPY source {source} is excluded by .dockerignore"
    stage_users: dict[str, str] = {}
    stage = ""
    for line in lines:
        if line.upper().startswith("FROM "):
            parts = line.split()
            stage = parts[3] if len(parts) > 3 else parts[1]
            stage_users[stage] = stage_users.get(parts[1], "root")
        elif line.upper().startswith("USER "):
            stage_users[stage] = line.split()[1]
    for name in targets:
        assert name in stage_users, f"no stage {name}"
        assert stage_users[name].split(":")[0] not in ("root", "0"), f"stage {name} runs as root"
    assert re.search(r'^ENTRYPOINT \["tailwatch"\]', text, re.MULTILINE), "the entrypoint is not `tailwatch`"
