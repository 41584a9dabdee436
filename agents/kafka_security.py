"""How tailwatch authenticates to Kafka and encrypts the connection: one frozen settings object, and the one
place that turns it into client arguments — aiokafka's `security_protocol` / `ssl_context` / `sasl_*` keywords
(`aiokafka_kwargs()`, for AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient and AIOKafkaClient) and Faust's
`broker_credentials` (`faust_credentials()`), so no command can drift.

Supported: PLAINTEXT, SSL (CA file or the system store, hostname verification on by default, optional client
certificate and key for mutual TLS, optional key password), SASL_PLAINTEXT and SASL_SSL with PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER. aiokafka 0.14 takes OAUTHBEARER tokens from an
`AbstractTokenProvider` (`sasl_oauth_token_provider`) and Faust 0.15 passes one through `OAuthCredentials`;
tailwatch's provider reads the token from a file on every (re)connection, so a sidecar or a Kubernetes projected
token can refresh it. GSSAPI (Kerberos) is not offered: it needs the `gssapi` C bindings, which tailwatch does
not ship. Secrets are `Secret`s: their repr and str are `***`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from agents.logs import register_secrets


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    OAUTHBEARER = "OAUTHBEARER"


class KafkaSecurityError(ValueError):
    """The security settings cannot work (a missing username, an unreadable certificate …); never shows a secret."""


class Secret:
    """A password or key password: `***` in every repr, str, format and log line; `reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # never pickled (a Faust table, a multiprocessing queue): it would leak
        raise TypeError("a Secret cannot be pickled")


class TokenFile:
    """An OAUTHBEARER token read from `path` each time a connection authenticates (the file is refreshed outside)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise KafkaSecurityError(f"cannot read the OAUTHBEARER token file {self.path}: {error.strerror}") \
                from None
        if not token:
            raise KafkaSecurityError(f"the OAUTHBEARER token file {self.path} is empty")
        register_secrets([token])  # a bearer token is a credential: never in a log line
        return token

    def __repr__(self) -> str:
        return f"TokenFileProvider({str(self.path)!r})"


@cache
def _provider_class() -> type[TokenFile]:
    """`TokenFile` as aiokafka's `AbstractTokenProvider` (which aiokafka checks for): aiokafka is imported only
    when a client is configured, not by every command that reads settings."""
    from aiokafka.abc import AbstractTokenProvider  # noqa: PLC0415

    class TokenFileProvider(TokenFile, AbstractTokenProvider):  # type: ignore[misc]  # aiokafka has no type hints
        pass

    return TokenFileProvider


def token_file_provider(path: Path) -> TokenFile:
    """An aiokafka token provider reading `path`."""
    return _provider_class()(path)


@dataclass(frozen=True)
class KafkaSecurity:
    """The security half of the Kafka settings; the default is PLAINTEXT (a local or embedded broker)."""

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    ssl_ca_file: Path | None = None  # None: the system's trust store
    ssl_verify_hostname: bool = True
    ssl_cert_file: Path | None = None  # client certificate (chain), PEM: mutual TLS
    ssl_key_file: Path | None = None  # its private key, PEM
    ssl_key_password: Secret | None = field(default=None, repr=False)
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = field(default=None, repr=False)
    sasl_oauth_token_file: Path | None = None

    def __post_init__(self) -> None:
        for problem in self.problems():
            raise KafkaSecurityError(problem)

    def problems(self) -> list[str]:
        """What makes these settings unusable (empty when they are consistent)."""
        out = []
        if self.protocol.uses_sasl:
            if self.sasl_mechanism is None:
                out.append(f"security protocol {self.protocol} needs a SASL mechanism")
            elif self.sasl_mechanism is SaslMechanism.OAUTHBEARER:
                if self.sasl_oauth_token_file is None:
                    out.append("SASL mechanism OAUTHBEARER needs a token file (sasl.oauth_token_file)")
            elif not self.sasl_username or self.sasl_password is None:
                out.append(f"SASL mechanism {self.sasl_mechanism} needs a username and a password")
        elif self.sasl_mechanism is not None:
            out.append(f"a SASL mechanism is set but security protocol {self.protocol} does not use SASL "
                       f"(use SASL_SSL or SASL_PLAINTEXT)")
        tls_only = [name for name, value in (("ssl.ca_file", self.ssl_ca_file), ("ssl.cert_file", self.ssl_cert_file),
                                             ("ssl.key_file", self.ssl_key_file)) if value is not None]
        if tls_only and not self.protocol.uses_tls:
            out.append(f"{', '.join(tls_only)} set but security protocol {self.protocol} does not use TLS "
                       f"(use SSL or SASL_SSL)")
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            out.append("a client certificate needs both ssl.cert_file and ssl.key_file")
        if self.ssl_key_password is not None and self.ssl_key_file is None:
            out.append("ssl.key_password is set without ssl.key_file")
        return out

    @property
    def mutual_tls(self) -> bool:
        return self.ssl_cert_file is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL and SASL_SSL (None otherwise). Raises KafkaSecurityError when a file is bad."""
        if not self.protocol.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise KafkaSecurityError(f"cannot load the CA file {self.ssl_ca_file}: {_reason(error)}") from None
        context.check_hostname = self.ssl_verify_hostname
        context.verify_mode = ssl.CERT_REQUIRED
        if self.ssl_cert_file is not None and self.ssl_key_file is not None:
            password = self.ssl_key_password.reveal() if self.ssl_key_password else None
            try:
                context.load_cert_chain(str(self.ssl_cert_file), str(self.ssl_key_file), password=password)
            except (OSError, ssl.SSLError) as error:
                raise KafkaSecurityError(f"cannot load the client certificate {self.ssl_cert_file} with key "
                                         f"{self.ssl_key_file}: {_reason(error)}") from None
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin client, AIOKafkaClient)."""
        kwargs: dict[str, Any] = {"security_protocol": str(self.protocol)}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.protocol.uses_sasl and self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = str(self.sasl_mechanism)
            if self.sasl_mechanism is SaslMechanism.OAUTHBEARER:
                assert self.sasl_oauth_token_file is not None  # __post_init__
                kwargs["sasl_oauth_token_provider"] = token_file_provider(self.sasl_oauth_token_file)
            else:
                assert self.sasl_password is not None  # __post_init__
                kwargs["sasl_plain_username"] = self.sasl_username
                kwargs["sasl_plain_password"] = self.sasl_password.reveal()
        return kwargs

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials` (None for PLAINTEXT): SSLCredentials, SASLCredentials or OAuthCredentials.

        Faust derives SASL_SSL from a SASL credential that carries an SSL context, and SASL_PLAINTEXT from one
        without, so the protocol survives the translation (faust.transport.drivers.aiokafka)."""
        import faust  # noqa: PLC0415 - Faust is heavy; only the worker needs it

        context = self.ssl_context()
        if self.protocol is SecurityProtocol.PLAINTEXT:
            return None
        if self.protocol is SecurityProtocol.SSL:
            assert context is not None
            return faust.SSLCredentials(context)
        if self.sasl_mechanism is SaslMechanism.OAUTHBEARER:
            assert self.sasl_oauth_token_file is not None
            return faust.OAuthCredentials(oauth_cb=token_file_provider(self.sasl_oauth_token_file),
                                          ssl_context=context)
        assert self.sasl_password is not None and self.sasl_mechanism is not None
        return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password.reveal(),
                                     ssl_context=context, mechanism=str(self.sasl_mechanism))

    def secrets(self) -> list[str]:
        """The secret values, for log redaction."""
        return [secret.reveal() for secret in (self.sasl_password, self.ssl_key_password) if secret is not None]


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError):
        return str(error.reason or error.strerror or type(error).__name__)
    return str(error.strerror or error)
