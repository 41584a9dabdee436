"""Checking that tailwatch can use a Kafka cluster with its security settings, and telling apart why not.

`check_cluster` connects to the bootstrap brokers (each attempt bounded by `timeout_s`), then lists the topics
and creates the missing ones (or, with `create_topics=False`, only names the missing ones). A failure is a
`ClusterCheckFailed` whose `reason` is one of REASONS; its message never carries a secret (aiokafka's errors
carry the broker's text, never the password).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from agents.kafka_clients import admin_client
from agents.kafka_security import KafkaSecurity, KafkaSecurityError
from agents.topics import (  # the reasons of topic problems are the topics module's
    CREATE_FAILED,
    NOT_AUTHORIZED,
    TOPICS_MISSING,
    TopicSpec,
    TopicsUnusable,
    reconcile_topics,
)

UNREACHABLE = "unreachable"
TLS_FAILED = "tls-verification-failed"
AUTH_FAILED = "authentication-failed"
BAD_SETTINGS = "bad-settings"
REASONS = (UNREACHABLE, TLS_FAILED, AUTH_FAILED, NOT_AUTHORIZED, TOPICS_MISSING, CREATE_FAILED, BAD_SETTINGS)
# TLS alerts a broker sends about the client's certificate (TLS 1.2 sends them during the handshake).
CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN")


class ClusterCheckFailed(RuntimeError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class ClusterReport:
    broker: str
    existing: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ClusterCheckFailed(BAD_SETTINGS, f"not a host:port bootstrap address: {item.strip()!r}")
        out.append((host.strip("[]"), int(port)))
    return out


def classify(error: BaseException, security: KafkaSecurity, authenticated: bool = False) -> tuple[str, str]:
    """(reason, one line) for an error of a first connection (`authenticated`: after the SASL exchange)."""
    if authenticated and security.protocol.uses_sasl and isinstance(error, KafkaConnectionError | TimeoutError):
        # aiokafka ignores the error challenge of a refused OAUTHBEARER token: the first request then fails.
        return AUTH_FAILED, f"the broker closed the connection after SASL {security.sasl_mechanism} " \
                            "authentication: it refused the credentials" + (
                                " (an expired or invalid token?)" if security.sasl_oauth_token_file else "")
    if isinstance(error, ssl.SSLCertVerificationError):
        return TLS_FAILED, f"TLS verification of the broker's certificate failed: {error.verify_message} " \
                           f"(CA: {security.ssl_ca_file or 'the system trust store'})"
    if isinstance(error, ssl.SSLError) and any(alert in str(error.reason) for alert in CLIENT_CERT_ALERTS):
        return AUTH_FAILED, f"the broker refused the client certificate (TLS alert {error.reason})"
    if isinstance(error, ssl.SSLError):
        return TLS_FAILED, f"TLS handshake failed: {error.reason or error.strerror}"
    if isinstance(error, SaslAuthenticationFailed | UnsupportedSaslMechanismError):
        return AUTH_FAILED, f"SASL {security.sasl_mechanism} authentication failed for user " \
                            f"{security.sasl_username!r}: {error}"
    if isinstance(error, KafkaConnectionError) and security.protocol.uses_tls and "closed" in str(error):
        # TLS 1.3: a broker that requires a client certificate accepts the handshake and then closes.
        if security.mutual_tls:
            return AUTH_FAILED, "the broker closed the TLS connection after the handshake: it rejected the " \
                                f"client certificate {security.ssl_cert_file}"
        return AUTH_FAILED, "the broker closed the TLS connection after the handshake: it requires a client " \
                            "certificate (set kafka.security.ssl.cert_file and key_file)"
    if isinstance(error, KafkaConnectionError):
        return UNREACHABLE, f"the broker closed the connection ({error}); is the security protocol " \
                            f"({security.protocol}) the listener's?"
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return UNREACHABLE, "no answer in time (a firewall, a wrong port, or a TLS listener spoken to in plain text)"
    if isinstance(error, OSError):
        return UNREACHABLE, f"cannot connect: {error.strerror or error}"
    return UNREACHABLE, f"{type(error).__name__}: {error}"


async def first_connection(bootstrap: str, security: KafkaSecurity, timeout_s: float) -> str:
    """The first bootstrap broker that accepts a connection with `security` (and authenticates); else the reason
    of the last failure as ClusterCheckFailed."""
    try:
        kwargs = security.aiokafka_kwargs()
    except KafkaSecurityError as error:
        raise ClusterCheckFailed(BAD_SETTINGS, str(error)) from None
    failure: tuple[str, str] = (UNREACHABLE, "no bootstrap address")
    for host, port in _hosts(bootstrap):
        authenticated = False
        try:
            conn = await asyncio.wait_for(create_conn(host, port, request_timeout_ms=int(timeout_s * 1000),
                                                      **kwargs), timeout_s)
            authenticated = True
            try:
                metadata = await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)  # as AIOKafkaClient
                if not getattr(metadata, "brokers", None):  # a refused OAUTHBEARER token: the broker's SASL error
                    raise KafkaConnectionError("the first answer names no broker")  # read as an empty Metadata
            finally:
                conn.close()
        except (TimeoutError, OSError, KafkaError) as error:
            reason, text = classify(error, security, authenticated)
            failure = (reason, f"{host}:{port}: {text}")
            continue
        return f"{host}:{port}"
    raise ClusterCheckFailed(*failure)


async def check_cluster(bootstrap: str, security: KafkaSecurity, specs: list[TopicSpec], create_topics: bool,
                        timeout_s: float = 10.0) -> ClusterReport:
    report = ClusterReport(await first_connection(bootstrap, security, timeout_s))
    admin = admin_client(bootstrap, security=security, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        visible = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        report.existing = [spec.name for spec in specs if spec.name in visible]
        report.created = await reconcile_topics(admin, specs, create_topics, timeout_s)
    except TopicsUnusable as error:
        raise ClusterCheckFailed(error.reason, str(error)) from None
    except (TimeoutError, KafkaError, OSError) as error:
        reason, text = classify(error, security)
        raise ClusterCheckFailed(reason, text) from None
    finally:
        await admin.close()
    return report
