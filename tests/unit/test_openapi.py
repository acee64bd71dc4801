"""The committed OpenAPI document (docs/openapi.yaml) matches what the code serves at /api/schema/."""

from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_is_current(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    committed = ROOT / "docs" / "openapi.yaml"
    assert committed.read_text() == generated.read_text(), "Run `make schema` and commit docs/openapi.yaml."
