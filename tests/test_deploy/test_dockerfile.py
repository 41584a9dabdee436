"""deploy/Dockerfile: base image, COPY sources, non-root stages, entrypoint; the ingest stage has wrangler."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.test_deploy.checks import DOCKERFILE, ROOT, check_dockerfile, dockerfile_stages, load_compose


def targets() -> set[str]:
    return {s["build"]["target"] for s in load_compose()["services"].values() if "build" in s}


def test_the_dockerfile_builds_what_compose_uses() -> None:
    assert targets() == {"tailwatch", "ingest"}
    check_dockerfile(targets())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["tailwatch"] == "agents.cli:main"  # the entrypoint exists once the package is installed


def test_the_ingest_stage_installs_wrangler_on_node() -> None:
    text = DOCKERFILE.read_text()
    ingest = text[text.index("AS ingest"):]
    assert "npm install --global \"wrangler@" in ingest and "COPY --from=node /usr/local/bin/node" in ingest
    assert dockerfile_stages().index("ingest") > dockerfile_stages().index("tailwatch")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("COPY agents ./agents", "COPY agentz ./agents"), "COPY source agentz does not exist"),
    (lambda t: t.replace("COPY agents ./agents", "COPY tests ./tests"), "excluded by .dockerignore"),
    (lambda t: re.sub(r"USER 10001:10001\nWORKDIR", "WORKDIR", t), "stage tailwatch runs as root"),
    (lambda t: t.replace("python:3.12-slim-bookworm", "python:3.13"), "no python:3.12-slim"),
    (lambda t: t.replace('ENTRYPOINT ["tailwatch"]', 'ENTRYPOINT ["python"]'), "entrypoint is not"),
])
def test_a_broken_dockerfile_fails(tmp_path: Path, edit: object, message: str) -> None:
    (tmp_path / "deploy").mkdir()
    for name in ("pyproject.toml", "README.md", "constraints.txt", ".dockerignore"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    for name in ("schemas", "pipeline", "agents", "tests"):
        (tmp_path / name).mkdir()
    broken = tmp_path / "deploy" / "Dockerfile"
    original = DOCKERFILE.read_text()
    text = edit(original)  # type: ignore[operator]
    assert text != original
    broken.write_text(text)
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_dockerfile(targets(), broken)
