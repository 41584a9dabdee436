"""The effective configuration: defaults < `tailwatch.yaml` < environment variables < flags, each value knowing
where it came from. The file is validated strictly against `schemas.config.TailwatchConfig` with `file:line`
errors (agents/yaml_source.py, as for rule files); an environment variable or flag that is wrong is named too.

A secret is `${ENV_NAME}` in the file (the whole value), an environment variable, or a `*_file` key naming a file
that holds it; its value is read only when the Kafka security settings are built, and is `***` in every output.
Relative paths in the file are relative to the file's directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from agents.kafka_security import KafkaSecurity, KafkaSecurityError, SaslMechanism, Secret, SecurityProtocol
from agents.logs import register_secrets
from agents.settings import BOOTSTRAP_ENV, KafkaSettings
from agents.yaml_source import line_of, read_yaml, where
from schemas.config import TailwatchConfig

CONFIG_ENV = "TAILWATCH_CONFIG"

# Every environment variable the configuration reads, and the key it sets.
ENV_KEYS: dict[str, str] = {
    "TAILWATCH_LOG_LEVEL": "log_level",
    BOOTSTRAP_ENV: "kafka.bootstrap",
    "TAILWATCH_TOPIC_PREFIX": "kafka.topic_prefix",
    "TAILWATCH_PARTITIONS": "kafka.partitions",
    "TAILWATCH_REPLICATION_FACTOR": "kafka.replication_factor",
    "TAILWATCH_KAFKA_CREATE_TOPICS": "kafka.create_topics",
    "TAILWATCH_KAFKA_SECURITY_PROTOCOL": "kafka.security.protocol",
    "TAILWATCH_KAFKA_SSL_CA": "kafka.security.ssl.ca_file",
    "TAILWATCH_KAFKA_SSL_VERIFY_HOSTNAME": "kafka.security.ssl.verify_hostname",
    "TAILWATCH_KAFKA_SSL_CERT": "kafka.security.ssl.cert_file",
    "TAILWATCH_KAFKA_SSL_KEY": "kafka.security.ssl.key_file",
    "TAILWATCH_KAFKA_SSL_KEY_PASSWORD": "kafka.security.ssl.key_password",
    "TAILWATCH_KAFKA_SSL_KEY_PASSWORD_FILE": "kafka.security.ssl.key_password_file",
    "TAILWATCH_KAFKA_SASL_MECHANISM": "kafka.security.sasl.mechanism",
    "TAILWATCH_KAFKA_SASL_USERNAME": "kafka.security.sasl.username",
    "TAILWATCH_KAFKA_SASL_PASSWORD": "kafka.security.sasl.password",
    "TAILWATCH_KAFKA_SASL_PASSWORD_FILE": "kafka.security.sasl.password_file",
    "TAILWATCH_KAFKA_SASL_OAUTH_TOKEN_FILE": "kafka.security.sasl.oauth_token_file",
    "TAILWATCH_RULES_FILE": "rules.file",
    "TAILWATCH_CHANNELS_FILE": "channels.file",
    "TAILWATCH_WEB_BIND": "web.bind",
    "TAILWATCH_WRANGLER": "ingest.wrangler",
    "TAILWATCH_INGEST_TOKEN": "ingest.token",
}
SECRET_KEYS = frozenset({"kafka.security.sasl.password", "kafka.security.ssl.key_password", "ingest.token"})
# A secret given one way at a higher layer replaces the other way of a lower layer.
_PARTNERS = {key: f"{key}_file" for key in SECRET_KEYS} | {f"{key}_file": key for key in SECRET_KEYS}
_PATH_KEYS = frozenset({"kafka.security.ssl.ca_file", "kafka.security.ssl.cert_file", "kafka.security.ssl.key_file",
                        "kafka.security.ssl.key_password_file", "kafka.security.sasl.password_file",
                        "kafka.security.sasl.oauth_token_file", "rules.file", "channels.file",
                        "ingest.token_file"})
_ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class ConfigError(ValueError):
    """A configuration problem: `where: what` per line (a file:line, an environment variable or a flag)."""


@dataclass(frozen=True)
class Source:
    """Where an effective value came from: `default`, `file` (detail `path:line`), `env` or `flag` (its name)."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return self.kind if not self.detail else f"{self.kind} {self.detail}"


DEFAULT = Source("default")


@dataclass(frozen=True)
class EffectiveConfig:
    config: TailwatchConfig
    sources: Mapping[str, Source]  # every leaf key (`kafka.security.protocol`) → where its value came from
    path: Path | None = None
    _values: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def value(self, key: str) -> Any:
        return self._values[key]

    def path_value(self, key: str) -> Path | None:
        """A path setting; relative paths from the file are taken relative to the file's directory."""
        value = self._values[key]
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.sources[key].kind == "file" and self.path is not None:
            path = self.path.parent / path
        return path

    def lines(self) -> list[tuple[str, str, str]]:
        """(key, shown value, source) for every setting, secrets as `***` (or `(unset)`)."""
        out = []
        for key in sorted(self._values):
            value = self._values[key]
            if key in SECRET_KEYS and value is not None:
                shown = "***"
            else:
                shown = "(unset)" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            out.append((key, shown, str(self.sources[key])))
        return out

    def inline_secrets(self) -> list[str]:
        """The secrets written in the file itself (not `${NAME}`): they work, but belong in the environment or a
        file only the service can read."""
        return [key for key in sorted(SECRET_KEYS) if self._values[key] is not None
                and self.sources[key].kind == "file" and "${" not in self.sources[key].detail]

    def kafka_security(self) -> KafkaSecurity:
        """The security settings, secrets read from their files; ConfigError names the setting and its source."""
        sasl = "kafka.security.sasl."
        ssl = "kafka.security.ssl."
        mechanism = self._values[sasl + "mechanism"]
        try:
            security = KafkaSecurity(
                protocol=SecurityProtocol(self._values["kafka.security.protocol"]),
                ssl_ca_file=self.path_value(ssl + "ca_file"),
                ssl_verify_hostname=bool(self._values[ssl + "verify_hostname"]),
                ssl_cert_file=self.path_value(ssl + "cert_file"),
                ssl_key_file=self.path_value(ssl + "key_file"),
                ssl_key_password=self._secret(ssl + "key_password"),
                sasl_mechanism=SaslMechanism(mechanism) if mechanism else None,
                sasl_username=self._values[sasl + "username"],
                sasl_password=self._secret(sasl + "password"),
                sasl_oauth_token_file=self.path_value(sasl + "oauth_token_file"),
            )
        except KafkaSecurityError as error:
            given = ", ".join(f"{key} from {self.sources[key]}" for key in sorted(self.sources)
                              if key.startswith("kafka.security.") and self.sources[key].kind != "default")
            raise ConfigError(f"kafka.security: {error} (set: {given or 'nothing'})") from None
        register_secrets(security.secrets())
        return security

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self._values["kafka.bootstrap"],
                             topic_prefix=self._values["kafka.topic_prefix"],
                             partitions=self._values["kafka.partitions"],
                             replication_factor=self._values["kafka.replication_factor"],
                             create_topics=self._values["kafka.create_topics"],
                             security=self.kafka_security())

    def ingest_token(self) -> str | None:
        """`ingest --listen`'s bearer token (ingest.token, ingest.token_file or TAILWATCH_INGEST_TOKEN), redacted from
        every log line from now on."""
        secret = self._secret("ingest.token")
        if secret is None:
            return None
        register_secrets([secret.reveal()])
        return secret.reveal()

    def _secret(self, key: str) -> Secret | None:
        value = self._values[key]
        if value is not None:
            return Secret(value.get_secret_value() if isinstance(value, SecretStr) else str(value))
        path = self.path_value(f"{key}_file")
        if path is None:
            return None
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise ConfigError(f"{key}_file ({self.sources[f'{key}_file']}): cannot read {path}: {reason}") from None
        if not value:
            raise ConfigError(f"{key}_file ({self.sources[f'{key}_file']}): {path} is empty")
        return Secret(value)


def config_path(flag: str | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file: `--config`, else $TAILWATCH_CONFIG, else none."""
    env = os.environ if env is None else env
    chosen = flag or env.get(CONFIG_ENV) or None
    return Path(chosen) if chosen else None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None,
                flags: Mapping[str, tuple[str, Any]] | None = None) -> EffectiveConfig:
    """The effective configuration. `flags`: key → (flag name, value) for the flags given on the command line."""
    env = os.environ if env is None else env
    layers: list[tuple[dict[str, Any], dict[str, Source]]] = [_flatten(TailwatchConfig().model_dump(), DEFAULT)]
    if path is not None:
        layers.append(_file_layer(path, env))
    env_values = {ENV_KEYS[name]: value for name, value in env.items() if name in ENV_KEYS and value != ""}
    layers.append((env_values, {key: Source("env", name) for name, key in ENV_KEYS.items() if key in env_values}))
    given = {key: value for key, (_flag, value) in (flags or {}).items() if value is not None}
    layers.append((given, {key: Source("flag", flag) for key, (flag, _value) in (flags or {}).items()
                           if key in given}))
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for layer_values, layer_sources in layers:
        for key, value in layer_values.items():
            partner = _PARTNERS.get(key)
            if partner is not None and value is not None and values.get(partner) is not None:
                values[partner], sources[partner] = None, layer_sources[key]
            values[key], sources[key] = value, layer_sources[key]
    try:
        config = TailwatchConfig.model_validate(_nest(values))
    except ValidationError as error:
        raise ConfigError("\n".join(_problem(item, sources) for item in error.errors())) from None
    return EffectiveConfig(config, sources, path, _flatten(config.model_dump(), DEFAULT)[0])


def _file_layer(path: Path, env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Source]]:
    data, root, _text = read_yaml(path, ConfigError)
    data = {} if data is None else data
    problems: list[str] = []
    references: dict[str, str] = {}  # key → the NAME of its `${NAME}`
    data = _expand(data, (), root, path, env, problems, references)
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        TailwatchConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError("\n".join(
            f"{path}:{line_of(root, tuple(item['loc'])) or '?'}: {where(tuple(item['loc']))}: {item['msg']}"
            for item in error.errors())) from None
    values, _ = _flatten(data, DEFAULT)
    return values, {key: Source("file", f"{path}:{line_of(root, tuple(key.split('.')))}"
                                + (f" ${{{references[key]}}}" if key in references else "")) for key in values}


def _expand(value: Any, loc: tuple[str, ...], root: yaml.Node | None, path: Path, env: Mapping[str, str],
            problems: list[str], references: dict[str, str]) -> Any:
    """`${NAME}` (a whole string value) replaced by the environment variable NAME; unset: a problem."""
    if isinstance(value, dict):
        return {key: _expand(item, (*loc, str(key)), root, path, env, problems, references)
                for key, item in value.items()}
    if isinstance(value, str) and (match := _ENV_REFERENCE.match(value)):
        name = match.group(1)
        if name not in env:
            problems.append(f"{path}:{line_of(root, loc) or '?'}: {'.'.join(loc)}: environment variable {name} "
                            f"is not set")
            return value
        references[".".join(loc)] = name
        return env[name]
    return value


def _flatten(data: Mapping[str, Any], source: Source, prefix: str = "") -> tuple[dict[str, Any], dict[str, Source]]:
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            values |= _flatten(value, source, f"{name}.")[0]
        else:
            values[name] = value
    return values, dict.fromkeys(values, source)


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _problem(item: Mapping[str, Any], sources: Mapping[str, Source]) -> str:
    """One merged-value problem, named by the source of the value (a secret's value is never shown)."""
    key = ".".join(str(part) for part in item["loc"])
    source = sources.get(key)
    origin = f"{source}: " if source is not None and source.kind != "default" else ""
    return f"{origin}{key}: {item['msg']}"
