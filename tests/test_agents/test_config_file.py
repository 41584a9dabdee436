"""tailwatch.yaml: file < environment < flags, each value's source, strict file:line errors, `${ENV}` and file
secrets, and the security settings it builds (aiokafka keywords, Faust credentials) never showing a secret."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import faust
import pytest

from agents.config_file import ConfigError, load_config
from agents.kafka_security import KafkaSecurity, KafkaSecurityError, SaslMechanism, Secret, SecurityProtocol
from agents.logs import JsonFormatter

PASSWORD = "pw-7f3a9c1e5b"

CONFIG = """\
version: 1
kafka:
  bootstrap: file-broker:9093
  topic_prefix: prod
  partitions: 6
  create_topics: false
  security:
    protocol: SASL_SSL
    sasl:
      mechanism: SCRAM-SHA-512
      username: tailwatch
      password: ${KAFKA_PW}
rules:
  file: rules/prod.yaml
"""


def write(tmp_path: Path, text: str, name: str = "tailwatch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_env_flag_precedence_and_sources(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    env = {"KAFKA_PW": PASSWORD, "TAILWATCH_PARTITIONS": "12", "TAILWATCH_KAFKA_BOOTSTRAP": "env-broker:9093"}
    config = load_config(path, env=env, flags={"kafka.bootstrap": ("--bootstrap", "flag-broker:9093"),
                                               "kafka.topic_prefix": ("--topic-prefix", None)})
    assert config.value("kafka.bootstrap") == "flag-broker:9093"  # flag > env > file
    assert str(config.sources["kafka.bootstrap"]) == "flag --bootstrap"
    assert config.value("kafka.partitions") == 12  # env > file
    assert str(config.sources["kafka.partitions"]) == "env TAILWATCH_PARTITIONS"
    assert config.value("kafka.topic_prefix") == "prod"  # a flag not given does not count
    assert str(config.sources["kafka.topic_prefix"]) == f"file {path}:4"
    assert str(config.sources["kafka.security.sasl.password"]) == f"file {path}:12 ${{KAFKA_PW}}"
    assert config.inline_secrets() == []
    assert config.value("kafka.replication_factor") == 1
    assert str(config.sources["kafka.replication_factor"]) == "default"
    assert config.path_value("rules.file") == tmp_path / "rules" / "prod.yaml"  # relative to the file
    settings = config.kafka_settings()
    assert (settings.bootstrap, settings.topic_prefix, settings.partitions, settings.create_topics) == (
        "flag-broker:9093", "prod", 12, False)
    assert settings.security.sasl_password == Secret(PASSWORD)


def test_output_masks_secrets_and_names_sources(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG), env={"KAFKA_PW": PASSWORD})
    lines = {key: (shown, source) for key, shown, source in config.lines()}
    assert lines["kafka.security.sasl.password"][0] == "***"
    assert lines["kafka.security.sasl.mechanism"] == ("SCRAM-SHA-512", f"file {tmp_path / 'tailwatch.yaml'}:10")
    assert PASSWORD not in repr(config) + repr(config.kafka_settings()) + str(config.lines())


def test_env_password_replaces_a_password_file_of_the_file(tmp_path: Path) -> None:
    secret_file = write(tmp_path, PASSWORD + "\n", "kafka-password")
    path = write(tmp_path, CONFIG.replace("password: ${KAFKA_PW}", "password_file: kafka-password"))
    from_file = load_config(path, env={}).kafka_security()
    assert from_file.sasl_password == Secret(PASSWORD)  # trailing newline dropped, path relative to the file
    assert secret_file.exists()
    from_env = load_config(path, env={"TAILWATCH_KAFKA_SASL_PASSWORD": "other-secret"}).kafka_security()
    assert from_env.sasl_password == Secret("other-secret")


@pytest.mark.parametrize(("text", "expected"), [
    ("kafka:\n  partitions: 4\n  topic_prefx: x\n", ":3: kafka.topic_prefx: Extra inputs are not permitted"),
    ("kafka:\n  security:\n    protocol: TLS\n", ":3: kafka.security.protocol: Input should be"),
    ("kafka:\n  security:\n    sasl:\n      password: ${NOT_SET_ANYWHERE}\n",
     ":4: kafka.security.sasl.password: environment variable NOT_SET_ANYWHERE is not set"),
    ("kafka:\n  partitions: [1\n", ":3: not valid YAML"),
    ("kafka:\n  security:\n    sasl:\n      password: x\n      password_file: /p\n",
     ":4: kafka.security.sasl: Value error, give password or password_file, not both"),
])
def test_file_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert f"{path}{expected}" in str(caught.value)


def test_env_and_flag_errors_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"env TAILWATCH_PARTITIONS: kafka.partitions: Input should be a valid"):
        load_config(None, env={"TAILWATCH_PARTITIONS": "many"})
    with pytest.raises(ConfigError, match=r"flag --partitions: kafka.partitions: Input should be greater"):
        load_config(None, env={}, flags={"kafka.partitions": ("--partitions", 0)})
    with pytest.raises(ConfigError, match=r"needs a username and a password .*protocol from env"):
        load_config(None, env={"TAILWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                               "TAILWATCH_KAFKA_SASL_MECHANISM": "PLAIN"}).kafka_security()
    with pytest.raises(ConfigError, match=r"cannot read .*missing-file: No such file"):
        load_config(None, env={"TAILWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                               "TAILWATCH_KAFKA_SASL_MECHANISM": "PLAIN", "TAILWATCH_KAFKA_SASL_USERNAME": "u",
                               "TAILWATCH_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing-file")}).kafka_security()


def test_secret_never_shows() -> None:
    secret = Secret(PASSWORD)
    assert PASSWORD not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    security = KafkaSecurity(SecurityProtocol.SASL_PLAINTEXT, sasl_mechanism=SaslMechanism.PLAIN,
                             sasl_username="u", sasl_password=secret)
    assert PASSWORD not in repr(security) + str(security)
    assert PASSWORD not in repr(security.faust_credentials())


def test_registered_secrets_are_redacted_from_logs(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG.replace("password: ${KAFKA_PW}", "password_file: pw"))
    write(tmp_path, "from-a-file-31337\n", "pw")
    load_config(path, env={}).kafka_security()
    import logging

    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "login with %s failed", ("from-a-file-31337",), None)
    assert "from-a-file-31337" not in JsonFormatter().format(record)


def test_client_arguments_for_each_protocol(tmp_path: Path) -> None:
    plain = KafkaSecurity()
    assert plain.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert plain.faust_credentials() is None
    sasl = KafkaSecurity(SecurityProtocol.SASL_SSL, sasl_mechanism=SaslMechanism.SCRAM_SHA_256,
                         sasl_username="u", sasl_password=Secret(PASSWORD))
    kwargs = sasl.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kwargs["sasl_plain_password"] == PASSWORD and kwargs["ssl_context"].check_hostname
    credentials = sasl.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-256"
    sasl_plaintext = KafkaSecurity(SecurityProtocol.SASL_PLAINTEXT, sasl_mechanism=SaslMechanism.PLAIN,
                                   sasl_username="u", sasl_password=Secret(PASSWORD))
    assert sasl_plaintext.faust_credentials().protocol.value == "SASL_PLAINTEXT"
    assert "ssl_context" not in sasl_plaintext.aiokafka_kwargs()
    token = write(tmp_path, "header.payload.sig\n", "token")
    oauth = KafkaSecurity(SecurityProtocol.SASL_SSL, sasl_mechanism=SaslMechanism.OAUTHBEARER,
                          sasl_oauth_token_file=token)
    assert isinstance(oauth.faust_credentials(), faust.OAuthCredentials)
    unverified = KafkaSecurity(SecurityProtocol.SSL, ssl_verify_hostname=False)
    assert unverified.aiokafka_kwargs()["ssl_context"].check_hostname is False
    assert isinstance(unverified.faust_credentials(), faust.SSLCredentials)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"protocol": SecurityProtocol.SASL_SSL}, "needs a SASL mechanism"),
    ({"sasl_mechanism": SaslMechanism.PLAIN}, "does not use SASL"),
    ({"ssl_ca_file": Path("/ca.pem")}, "does not use TLS"),
    ({"protocol": SecurityProtocol.SSL, "ssl_cert_file": Path("/c.pem")}, "needs both"),
])
def test_inconsistent_security_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message):
        KafkaSecurity(**kwargs)  # type: ignore[arg-type]


def test_config_show_prints_sources_and_masks(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    env = {**os.environ, "KAFKA_PW": PASSWORD, "TAILWATCH_CONFIG": str(path)}
    result = subprocess.run([sys.executable, "-m", "agents.cli", "config", "show", "--partitions", "3"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "kafka.partitions                     = 3  # flag --partitions" in result.stdout
    assert f"kafka.security.sasl.password         = ***  # file {path}:12 ${{KAFKA_PW}}" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    inline = write(tmp_path, CONFIG.replace("${KAFKA_PW}", PASSWORD), "inline.yaml")
    result = subprocess.run([sys.executable, "-m", "agents.cli", "config", "show", "--config", str(inline)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert f"# warning: kafka.security.sasl.password is written in {inline}: use `${{ENV_NAME}}` or password_file" \
        in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    bad = write(tmp_path, "kafka:\n  bootstrap: x:1\n  sasl: {}\n", "bad.yaml")
    result = subprocess.run([sys.executable, "-m", "agents.cli", "config", "check", "--config", str(bad)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert f"{bad}:3: kafka.sasl: Extra inputs are not permitted" in result.stderr
    assert "Traceback" not in result.stderr
