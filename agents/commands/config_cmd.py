"""`tailwatch config show|check`: the effective configuration (tailwatch.yaml < environment < flags) with every
secret masked and each value's source; `check` then connects to Kafka with it and checks the topics.

Exit codes: 0 the cluster answers and every topic exists or was created; 2 the configuration is invalid; 3 Kafka
cannot be used, with the reason told apart (agents/kafka_check.py: unreachable, tls-verification-failed,
authentication-failed, not-authorized, topics-missing, topic-creation-failed, bad-settings).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from agents.config_file import CONFIG_ENV, ConfigError, EffectiveConfig, config_path, load_config
from agents.kafka_check import ClusterCheckFailed, check_cluster

EXIT_CONFIG = 2
EXIT_KAFKA = 3

# flag dest → (configuration key, flag name). No flag takes a secret: the command line is visible to every user
# of the machine (ps, /proc); secrets come from the file's `${ENV}` / `*_file` keys or the environment.
FLAGS: dict[str, tuple[str, str]] = {
    "bootstrap": ("kafka.bootstrap", "--bootstrap"),
    "topic_prefix": ("kafka.topic_prefix", "--topic-prefix"),
    "partitions": ("kafka.partitions", "--partitions"),
    "create_topics": ("kafka.create_topics", "--no-create-topics"),
    "security_protocol": ("kafka.security.protocol", "--security-protocol"),
    "sasl_mechanism": ("kafka.security.sasl.mechanism", "--sasl-mechanism"),
    "sasl_username": ("kafka.security.sasl.username", "--sasl-username"),
    "ssl_ca": ("kafka.security.ssl.ca_file", "--ssl-ca"),
    "ssl_cert": ("kafka.security.ssl.cert_file", "--ssl-cert"),
    "ssl_key": ("kafka.security.ssl.key_file", "--ssl-key"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show", "check"],
                        help="show: the effective configuration; check: show it, then connect and check the topics")
    parser.add_argument("--config", default=None, metavar="FILE", help=f"tailwatch.yaml (default ${CONFIG_ENV})")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap address(es), host:port[,host:port]")
    parser.add_argument("--topic-prefix", default=None)
    parser.add_argument("--partitions", type=int, default=None)
    parser.add_argument("--no-create-topics", dest="create_topics", action="store_const", const=False, default=None,
                        help="only check that every topic exists (a cluster where tailwatch may not create topics)")
    parser.add_argument("--security-protocol", default=None,
                        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    parser.add_argument("--sasl-mechanism", default=None,
                        choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"])
    parser.add_argument("--sasl-username", default=None, help="(the password: TAILWATCH_KAFKA_SASL_PASSWORD[_FILE])")
    parser.add_argument("--ssl-ca", default=None, metavar="PEM", help="CA file (default: the system trust store)")
    parser.add_argument("--ssl-cert", default=None, metavar="PEM", help="client certificate (mutual TLS)")
    parser.add_argument("--ssl-key", default=None, metavar="PEM", help="the client certificate's key")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for each connection step (default 10)")


def flag_values(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    return {key: (flag, getattr(args, dest)) for dest, (key, flag) in FLAGS.items()}


def show(config: EffectiveConfig) -> None:
    print(f"# configuration file: {config.path or '(none)'}")
    lines = config.lines()
    width = max(len(key) for key, _, _ in lines)
    for key, shown, source in lines:
        print(f"{key:<{width}} = {shown}  # {source}")
    for key in config.inline_secrets():
        print(f"# warning: {key} is written in {config.path}: use `${{ENV_NAME}}` or {key.rsplit('.', 1)[1]}_file")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(config_path(args.config), flags=flag_values(args))
        show(config)
        if args.action == "show":
            return 0
        settings = config.kafka_settings()
    except ConfigError as error:
        print(f"tailwatch config: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if not settings.bootstrap:
        print("tailwatch config: no kafka.bootstrap: commands would start the embedded broker; nothing to check",
              file=sys.stderr)
        return 0
    from agents.commands.topics_cmd import all_topic_specs  # noqa: PLC0415 - pulls in Faust: only for `check`

    specs = all_topic_specs(settings)
    security = settings.security
    try:
        report = asyncio.run(check_cluster(settings.bootstrap, security, specs, settings.create_topics,
                                           timeout_s=args.timeout))
    except ClusterCheckFailed as error:
        print(f"tailwatch config: Kafka check failed: {error.reason}: {error}", file=sys.stderr)
        return EXIT_KAFKA
    who = f", {security.sasl_mechanism} as {security.sasl_username}" if security.protocol.uses_sasl else ""
    tls = ", client certificate" if security.mutual_tls else ""
    print(f"# connected to {report.broker} over {security.protocol}{who}{tls}")
    print(f"# topics: {len(report.existing)} exist, {len(report.created)} created"
          + (f" ({', '.join(report.created)})" if report.created else ""))
    return 0
