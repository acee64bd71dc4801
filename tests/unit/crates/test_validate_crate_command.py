"""``manage.py validate_crate``: reports and exit status (0 valid, 1 invalid, 2 unreadable)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from crates.fivesafes import create_bag, pack_bag
from tests.unit.crates.conftest import REPO, RESULT_FIXTURE
from tests.unit.crates.test_bag import IDENTIFIER


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("validate_crate", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_a_valid_crate(fixture_crates: dict[str, Path]) -> None:
    code, out, _ = run(str(fixture_crates[RESULT_FIXTURE]))
    assert code == 0
    assert out.startswith("VALID  ") and "profile https://w3id.org/5s-crate/0.4" in out
    assert "No issues." in out


def test_an_invalid_crate_lists_its_issues_by_severity(fixture_crates: dict[str, Path]) -> None:
    code, out, _ = run(str(fixture_crates["spec-0.4-result"]))
    assert code == 1
    assert out.startswith("INVALID  ")
    errors, warnings = out.index("Errors (REQUIRED)"), out.index("Warnings (RECOMMENDED)")
    assert errors < warnings < out.index("Notes (OPTIONAL)")
    assert "five-safes-crate-0.4_3.1  [#check-f33fe90c-0c22-4c72-b299-de509028410e]" in out[errors:warnings]
    assert 'must have "@type": "AssessAction".' in out


def test_json_output(fixture_crates: dict[str, Path]) -> None:
    code, out, _ = run(str(fixture_crates["spec-0.4-request"] / "data" / "ro-crate-metadata.json"), "--json")
    report = json.loads(out)
    assert code == 1
    assert report["readable"] is True and report["valid"] is False
    assert [issue["check"] for issue in report["errors"]] == ["five-safes-crate-0.4_16.2"]
    assert report["errors"][0]["entity"] == "#project-be6ffb55-4f5a-4c14-b60e-47e0951090c70"


def test_an_unreadable_crate(tmp_path: Path) -> None:
    (tmp_path / "ro-crate-metadata.json").write_bytes(b'{"@graph": [], "@graph": []}')
    code, out, err = run(str(tmp_path))
    assert (code, out) == (2, "")
    assert "UNREADABLE" in err and "metadata.duplicate_key" in err
    code, out, _ = run(str(tmp_path / "nothing.zip"), "--json")
    assert code == 2
    assert json.loads(out)["refusal"]["code"] == "input.not_found"


@pytest.mark.parametrize(
    ("target", "status"),
    [(RESULT_FIXTURE, 0), ("validator-invalid-context_single_wrong_version", 1), ("missing-crate", 2)],
)
def test_exit_status_of_the_real_command(fixture_crates: dict[str, Path], target: str, status: int) -> None:
    path = fixture_crates.get(target, Path("/nonexistent") / target)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    completed = subprocess.run(
        [sys.executable, "manage.py", "validate_crate", str(path), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=False,
    )
    assert completed.returncode == status, completed.stderr.decode(errors="replace")
    assert json.loads(completed.stdout)["valid"] is (status == 0)


# --- The same command without Django: python -m crates.fivesafes.validate ------------------------------


def _module(*args: str, importtime: bool = False) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [
            sys.executable,
            *(["-X", "importtime"] if importtime else []),
            "-m",
            "crates.fivesafes.validate",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("target", "status"),
    [(RESULT_FIXTURE, 0), ("validator-invalid-context_single_wrong_version", 1), ("missing-crate", 2)],
)
def test_the_django_free_command_gives_the_same_answer_without_importing_django(
    fixture_crates: dict[str, Path], target: str, status: int
) -> None:
    path = str(fixture_crates.get(target, Path("/nonexistent") / target))
    completed = _module(path, "--json", importtime=True)
    assert completed.returncode == status, completed.stderr.decode(errors="replace")
    imported = [line.split("|")[-1].strip() for line in completed.stderr.decode().splitlines()]
    assert "crates.fivesafes.loader" in imported
    assert not [name for name in imported if name == "django" or name.startswith("django.")]
    code, out, _ = run(path, "--json")
    assert code == status
    assert json.loads(completed.stdout) == json.loads(out)


def test_the_django_free_command_prints_the_same_text(fixture_crates: dict[str, Path]) -> None:
    path = str(fixture_crates["spec-0.4-result"])
    completed = _module(path)
    assert completed.returncode == 1
    assert completed.stdout.decode() == run(path)[1]


def test_bagit_is_quiet_unless_asked(fixture_crates: dict[str, Path], tmp_path: Path) -> None:
    """A bag of many files checked: no line per file from the bagit library, unless --verbose."""
    bag_dir = tmp_path / "request"
    shutil.copytree(fixture_crates[RESULT_FIXTURE], bag_dir / "data")
    for number in range(50):
        (bag_dir / "data" / f"extra-{number}.txt").write_text(f"{number}\n")
    create_bag(bag_dir, IDENTIFIER)
    zip_path = pack_bag(bag_dir, tmp_path / "crate.zip")
    quiet = _module(str(zip_path))
    assert quiet.returncode == 0, quiet.stderr.decode(errors="replace")
    assert quiet.stderr == b""
    verbose = _module("--verbose", str(zip_path))
    assert verbose.returncode == 0
    assert "INFO bagit" in verbose.stderr.decode()
