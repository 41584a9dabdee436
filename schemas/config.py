"""`tailwatch.yaml`: one configuration file for every command (agents/config_file.py loads it).

Every key is optional; an unknown key is an error. Secrets (`kafka.security.sasl.password`,
`kafka.security.ssl.key_password`) are never required inline: give `${ENV_NAME}` (the whole value) or the
`*_file` key naming a file that holds the secret. Environment variables override the file and flags override both.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_of(section: BaseModel, inline: str, from_file: str) -> None:
    if getattr(section, inline) is not None and getattr(section, from_file) is not None:
        raise ValueError(f"give {inline} or {from_file}, not both")


class SslSection(_Strict):
    ca_file: str | None = Field(None, description="PEM CA bundle; unset: the system's trust store")
    verify_hostname: bool = Field(True, description="check that the broker's certificate names the host")
    cert_file: str | None = Field(None, description="client certificate (chain), PEM: mutual TLS")
    key_file: str | None = Field(None, description="the client certificate's private key, PEM")
    key_password: SecretStr | None = Field(None, description="the key's password: `${ENV_NAME}`, or key_password_file")
    key_password_file: str | None = Field(None, description="a file holding the key's password")

    @model_validator(mode="after")
    def _one_password(self) -> SslSection:
        _one_of(self, "key_password", "key_password_file")
        return self


class SaslSection(_Strict):
    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    username: str | None = Field(None, min_length=1)
    password: SecretStr | None = Field(None, description="`${ENV_NAME}`, or use password_file")
    password_file: str | None = Field(None, description="a file holding the password")
    oauth_token_file: str | None = Field(None, description="OAUTHBEARER: a file holding the current token")

    @model_validator(mode="after")
    def _one_password(self) -> SaslSection:
        _one_of(self, "password", "password_file")
        return self


class SecuritySection(_Strict):
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl: SslSection = SslSection()
    sasl: SaslSection = SaslSection()


class KafkaSection(_Strict):
    bootstrap: str | None = Field(None, min_length=1, description="host:port[,host:port…]; unset: embedded broker")
    topic_prefix: str = Field("tailwatch", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    partitions: int = Field(4, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=32)
    create_topics: bool = Field(True, description="false: use existing topics only and name the missing ones")
    security: SecuritySection = SecuritySection()


class RulesSection(_Strict):
    file: str | None = Field(None, description="rule file; unset: the spec's default rules")


class ChannelsSection(_Strict):
    file: str | None = Field(None, description="notification channel file; unset: the spec's default channels")


class WebSection(_Strict):
    bind: str = Field("127.0.0.1", min_length=1, description="address of the worker's and notifier's web port")
    port: int | None = Field(None, ge=0, le=65_535)


class IngestSection(_Strict):
    batch_records: int | None = Field(None, ge=1, le=1_000_000)
    lateness_ms: int | None = Field(None, ge=0)
    linger_ms: int | None = Field(None, ge=1)
    wrangler: str | None = Field(None, min_length=1, description="the wrangler command (default `wrangler`)")
    token: SecretStr | None = Field(None, description="`ingest --listen`'s bearer token: `${ENV_NAME}`, or token_file")
    token_file: str | None = Field(None, min_length=1, description="a file holding `ingest --listen`'s bearer token")


class TailwatchConfig(_Strict):
    version: Literal[1] = 1
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    kafka: KafkaSection = KafkaSection()
    rules: RulesSection = RulesSection()
    channels: ChannelsSection = ChannelsSection()
    web: WebSection = WebSection()
    ingest: IngestSection = IngestSection()
