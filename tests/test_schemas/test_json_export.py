"""The checked-in JSON Schemas match the models, and the models accept what the pipeline produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.commands.schemas_cmd import DEFAULT_DIR, rendered, stale_files
from schemas.registry import SCHEMAS, json_schemas


def test_checked_in_json_schemas_are_current() -> None:
    stale = stale_files(DEFAULT_DIR)
    assert stale == [], f"run `tailwatch schemas export`: stale {stale}"


def test_stale_check_notices_a_changed_file(tmp_path: Path) -> None:
    for name, body in rendered().items():
        (tmp_path / name).write_bytes(body)
    assert stale_files(tmp_path) == []
    (tmp_path / "log-batch.json").write_text("{}")
    (tmp_path / "orphan.json").write_text("{}")
    assert stale_files(tmp_path) == ["log-batch.json", "orphan.json"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_valid_json_schema_with_an_id(name: str) -> None:
    schema = json.loads((DEFAULT_DIR / f"{name}.json").read_text())
    assert schema["$id"].endswith(f"/{name}.json")
    assert schema["type"] == "object"
    assert schema == json_schemas()[name]
