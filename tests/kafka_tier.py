"""The Apache Kafka test tier: a real broker from `deploy/kafka/kafka.sh` (Maven jars, KRaft, 127.0.0.1 only).

`apache_kafka` is a session fixture: it fetches the jars (cached in deploy/kafka/lib and ~/.m2), starts one
broker on a free port in a temporary directory, and stops it when the session ends. `stop()` and `start()`
restart it on the same port and data directory, so tests can take the broker away and bring it back.
Besides PLAINTEXT (`bootstrap`), the broker has a SASL_SSL listener (`sasl_ssl_bootstrap`, SCRAM-SHA-512 users
`scram_user` — may do everything — and `reader_user` — no ACLs, so not authorized) and an SSL listener requiring
a client certificate (`ssl_bootstrap`), with a CA (`ca_file`), server and client certificates (`client_cert`,
`client_key`, encrypted with `client_key_password`) made with openssl for this session, and `unknown_ca_file`, a
CA that signed nothing the broker uses.
Tests that use it carry `@pytest.mark.kafka`. Without java or mvn they are skipped; with
TAILWATCH_REQUIRE_KAFKA=1 (for CI) that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tls_certs import OpensslMissing, issue, make_ca

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
EX_MISSING = 77  # kafka.sh: java, mvn or python missing
SKIP_MESSAGE = "Apache Kafka tier skipped: java/mvn not found"
REQUIRE_ENV = "TAILWATCH_REQUIRE_KAFKA"
FETCH_TIMEOUT_S = 240.0  # a cold Maven download (about 15 s here); a warm one takes milliseconds
START_TIMEOUT_S = 120.0  # kafka.sh itself gives up after 90 s (KAFKA_START_TIMEOUT)
STOP_TIMEOUT_S = 60.0  # kafka.sh: 30 s of SIGTERM, then SIGKILL


class KafkaToolsMissing(RuntimeError):
    """java, mvn or python is not installed (kafka.sh exit code 77)."""


class KafkaTierError(RuntimeError):
    """kafka.sh failed; the message carries its output."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kafka_sh(*args: str, timeout_s: float) -> str:
    """Run deploy/kafka/kafka.sh; its stdout. Raises KafkaToolsMissing or KafkaTierError."""
    if shutil.which("bash") is None:
        raise KafkaToolsMissing("bash not found")
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)}
    try:
        result = subprocess.run(["bash", str(KAFKA_SH), *args], capture_output=True, text=True,
                                timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise KafkaTierError(f"kafka.sh {' '.join(args)} did not finish within {timeout_s:.0f}s") from error
    if result.returncode == EX_MISSING:
        raise KafkaToolsMissing(result.stderr.strip())
    if result.returncode != 0:
        raise KafkaTierError(f"kafka.sh {' '.join(args)} failed with exit code {result.returncode}:\n"
                             f"{result.stderr.strip()}")
    return result.stdout


class ApacheKafka:
    """One Apache Kafka broker (KRaft broker + controller) with its data in `workdir`."""

    scram_user = "tailwatch"
    reader_user = "reader"

    def __init__(self, workdir: Path, port: int | None = None, secure: bool = True) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.running = False
        self.secure = secure
        self.sasl_ssl_port = free_port()
        self.ssl_port = free_port()
        self.tls_dir = workdir / "tls"
        self.scram_password = os.urandom(12).hex()
        self.reader_password = os.urandom(12).hex()
        self.client_key_password = os.urandom(8).hex()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def unknown_ca_file(self) -> Path:
        return self.tls_dir / "unknown-ca.pem"

    @property
    def client_cert(self) -> Path:
        return self.tls_dir / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.tls_dir / "client.key"

    def make_security_dir(self) -> None:
        """The CA, the broker's PEM key store, a client certificate and the SCRAM users (kafka.sh --security-dir)."""
        if (self.tls_dir / "server.pem").exists():
            return
        ca = make_ca(self.tls_dir, "ca")
        make_ca(self.tls_dir, "unknown-ca")
        server = issue(ca, self.tls_dir, "server", "/CN=127.0.0.1", server=True)
        (self.tls_dir / "server.pem").write_text(server.key.read_text() + server.cert.read_text())
        issue(ca, self.tls_dir, "client", "/CN=tailwatch-client", server=False, key_password=self.client_key_password)
        users = self.tls_dir / "scram-users"
        users.write_text(f"{self.scram_user} {self.scram_password}\n{self.reader_user} {self.reader_password}\n")
        users.chmod(0o600)

    def security_args(self) -> list[str]:
        if not self.secure:
            return []
        return ["--security-dir", str(self.tls_dir), "--sasl-ssl-port", str(self.sasl_ssl_port),
                "--ssl-port", str(self.ssl_port)]

    @property
    def log_file(self) -> Path:
        return self.workdir / "logs" / "server.log"

    @property
    def version(self) -> str:
        """The Kafka version of the jars kafka.sh runs, e.g. `4.0.2`."""
        lib = Path(os.environ.get("KAFKA_LIB_DIR", KAFKA_SH.parent / "lib"))
        jars = sorted(lib.glob("kafka_2.13-*.jar"))
        return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "unknown"

    @staticmethod
    def fetch() -> None:
        kafka_sh("fetch", timeout_s=FETCH_TIMEOUT_S)

    def start(self) -> str:
        """Start (or restart, keeping data, cluster id and ports); returns once the broker answers requests."""
        if self.secure:
            self.make_security_dir()
        out = kafka_sh("start", "--port", str(self.port), "--dir", str(self.workdir), *self.security_args(),
                       timeout_s=START_TIMEOUT_S)
        self.running = True
        bootstrap = out.strip().splitlines()[-1]
        assert bootstrap == self.bootstrap, out
        return bootstrap

    def stop(self, kill: bool = False) -> None:
        """Stop the broker: a clean shutdown (SIGTERM), or with `kill` a crash (SIGKILL)."""
        kafka_sh("stop", "--dir", str(self.workdir), *(["--kill"] if kill else []), timeout_s=STOP_TIMEOUT_S)
        self.running = False

    def restart(self, kill: bool = False) -> str:
        self.stop(kill=kill)
        return self.start()


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    broker = ApacheKafka(tmp_path_factory.mktemp("apache-kafka"))
    try:
        broker.fetch()
        broker.start()
    except (KafkaToolsMissing, OpensslMissing) as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {error}")
        pytest.skip(f"{SKIP_MESSAGE} ({error})")
    try:
        yield broker
    finally:
        broker.stop()
