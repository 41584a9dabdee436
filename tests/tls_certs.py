"""Test certificates made with the `openssl` command: a CA, a server certificate for 127.0.0.1 / localhost and
client certificates, all PEM (Kafka ≥ 2.7 reads PEM key and trust stores)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"


class OpensslMissing(RuntimeError):
    """The `openssl` command is not installed."""


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise OpensslMissing("openssl not found")
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def make_ca(directory: Path, name: str) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", DAYS, "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return Issued(cert, key)


def issue(ca: Issued, directory: Path, name: str, subject: str, server: bool,
          key_password: str | None = None) -> Issued:
    """A certificate signed by `ca`; a server one names 127.0.0.1 and localhost. The key is PKCS#8 PEM, encrypted
    with `key_password` when given."""
    cert, key, request, ext = (directory / f"{name}.crt", directory / f"{name}.key", directory / f"{name}.csr",
                               directory / f"{name}.ext")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
             "-subj", subject)
    usage = "serverAuth" if server else "clientAuth"
    ext.write_text(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"
                   + ("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else ""))
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
             "-out", str(cert), "-days", DAYS, "-extfile", str(ext))
    if key_password is not None:
        plain = directory / f"{name}.plain.key"
        key.rename(plain)
        _openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(plain), "-out", str(key),
                 "-passout", f"pass:{key_password}")
        plain.unlink()
    request.unlink()
    ext.unlink()
    return Issued(cert, key)
