"""The committed OpenAPI document (docs/openapi.yaml) matches what the code serves at /api/schema/."""

from pathlib import Path

import yaml
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _without_integer_ranges(node):
    """Integer bounds and formats follow the database backend's column sizes; the rest must match."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            node = {k: v for k, v in node.items() if k not in ("maximum", "minimum", "format")}
        return {key: _without_integer_ranges(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_integer_ranges(item) for item in node]
    return node


def test_committed_schema_is_current(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    committed = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    served = yaml.safe_load(generated.read_text())
    assert _without_integer_ranges(committed) == _without_integer_ranges(served), (
        "Run `make schema` and commit docs/openapi.yaml."
    )
