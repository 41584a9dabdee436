"""constraints.txt pins every dependency pyproject.toml declares (main and extras) at a version its specifier
allows, and the installs (scripts/install.sh, so CI; deploy/Dockerfile) use it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = [*project["dependencies"], *(t for extra in project["optional-dependencies"].values() for t in extra)]
    return [Requirement(text) for text in texts]


def pins(text: str) -> dict[str, Version]:
    found: dict[str, Version] = {}
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        assert line.count("==") == 1 and ";" not in line, f"not an exact pin: {line!r}"
        name, version = line.split("==")
        assert canonicalize_name(name) not in found, f"{name} pinned twice"
        found[canonicalize_name(name)] = Version(version)
    return found


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pinned = pins((ROOT / "constraints.txt").read_text(encoding="utf-8"))
    requirements = declared()
    assert len(requirements) >= 20
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not pinned in constraints.txt (scripts/freeze_constraints.py)"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pinned[name]}, outside pyproject's {req.specifier}"


def test_every_declared_dependency_has_an_upper_bound() -> None:
    for req in declared():
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in req.specifier), f"{req} has no upper bound"


def test_apprise_is_gone_and_rocksdict_is_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}
    assert "apprise" not in names and "rocksdict" not in names
    assert [Requirement(text).name for text in project["optional-dependencies"]["rocksdb"]] == ["rocksdict"]
    assert "apprise" not in (ROOT / "constraints.txt").read_text(encoding="utf-8")


def test_installs_use_the_constraints() -> None:
    install = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    assert "pip install --quiet -c constraints.txt -e '.[dev,rocksdb]'" in install
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install -c constraints.txt '.[rocksdb]'" in dockerfile
    assert "COPY pyproject.toml README.md constraints.txt ./" in dockerfile
