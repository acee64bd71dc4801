import json
import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reviews.sdc.policy import DEFAULT_POLICY, DisclosurePolicy

from .vectors import INPUTS, REPO_ROOT, finalise_folder


def run(*args):
    """(exit status, stdout) of the command run in-process."""
    out = StringIO()
    try:
        call_command("sdc_check", *map(str, args), stdout=out)
    except SystemExit as stopped:
        return stopped.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def safe_table(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text("row,C1,C2\nR1,25,15\nR2,12,30\n")
    return path


def test_exit_0_when_every_file_passes(safe_table):
    status, out = run(safe_table)
    assert status == 0
    assert out.startswith("Disclosure check: PASS (1 file(s): 0 fail, 0 review, 1 pass)")


def test_exit_1_when_any_file_fails_or_needs_review(safe_table, tmp_path):
    assert run(safe_table, INPUTS / "v1_frequency_microdata.csv")[0] == 1
    figure = tmp_path / "plot.png"
    figure.write_bytes(b"png")
    assert run(figure)[0] == 1


def test_exit_2_when_a_path_cannot_be_read(safe_table, tmp_path):
    status, out = run(safe_table, tmp_path / "missing")
    assert status == 2
    assert f"UNREADABLE {tmp_path / 'missing'}: No such file or folder." in out


def test_json_output(safe_table):
    status, out = run("--json", finalise_folder("1.0.2"), safe_table)
    data = json.loads(out)
    assert status == 1
    assert data["verdict"] == "fail"
    assert data["policy"] == {**DEFAULT_POLICY.as_dict(), "version": DEFAULT_POLICY.version}
    acro_statuses = [
        record["status"]
        for record in json.loads((finalise_folder("1.0.2") / "results.json").read_text())["results"].values()
        for _ in record["files"]
    ]
    statuses = [*acro_statuses, "pass"]
    assert data["counts"] == {
        "files": len(statuses),
        **{s: statuses.count(s) for s in ("pass", "review", "fail")},
    }
    by_path = {entry["path"]: entry for entry in data["files"]}
    table = by_path[str(finalise_folder("1.0.2") / "output_0_0.csv")]
    assert table["source"] == "ACRO 1.0.2"
    flag = next(flag for flag in table["flags"] if flag["row"] == ["R1"])
    assert flag == {
        "file": table["path"],
        "row": ["R1"],
        "column": "C3",
        "value": "9",
        "rule": "threshold",
        "verdict": "fail",
        "message": "ACRO MinimumThresholdCheck: fewer records than the minimum cell count.",
        "position": [0, 2],
    }


@pytest.mark.django_db
def test_tre_policy_comes_from_the_registry(tmp_path):
    from portal.models import TRE, Organisation

    organisation = Organisation.objects.create(name="Example University")
    tre = TRE.objects.create(
        organisation=organisation,
        name="Strict TRE",
        slug="strict",
        min_cell_count=20,
        dominance_k=Decimal("0.800"),
        rounding_base=5,
        required_output_checkers=3,
        permitted_output_kinds=["table"],
    )
    path = tmp_path / "counts.csv"
    path.write_text("row,C1\nR1,15\n")
    assert run(path)[0] == 0

    status, out = run("--tre", "strict", "--json", path)
    data = json.loads(out)
    assert status == 1
    assert data["policy"]["version"] == DisclosurePolicy.from_record(tre).version
    assert data["policy"]["min_cell_count"] == 20
    assert data["policy"]["permitted_output_kinds"] == ["table"]
    assert [flag["rule"] for flag in data["files"][0]["flags"]] == ["threshold"]
    assert data["files"][0]["policy_version"] == data["policy"]["version"]


@pytest.mark.django_db
def test_unknown_tre_is_a_clear_error_with_exit_2(safe_table):
    from portal.models import TRE, Organisation

    TRE.objects.create(organisation=Organisation.objects.create(name="Org"), name="Alpha", slug="alpha")
    with pytest.raises(CommandError, match="No TRE with slug 'nope'. Known TREs: alpha.") as raised:
        run("--tre", "nope", safe_table)
    assert raised.value.returncode == 2


@pytest.mark.parametrize(("argument", "status"), [("counts.csv", 0), ("plot.png", 1), ("missing.csv", 2)])
def test_the_process_exit_status(tmp_path, argument, status):
    (tmp_path / "counts.csv").write_text("row,C1\nR1,25\n")
    (tmp_path / "plot.png").write_bytes(b"png")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "sdc_check", str(tmp_path / argument)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == status, completed.stderr
    assert completed.stdout.startswith("Disclosure check: ")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zeros", "status", "rules"), [(False, 0, []), (True, 1, ["zeros", "threshold"] * 2)]
)
def test_zeros_follow_the_tres_policy_in_the_json(tmp_path, zeros, status, rules):
    from portal.models import TRE, Organisation

    organisation = Organisation.objects.create(name="Example University")
    TRE.objects.create(organisation=organisation, name="A TRE", slug="a-tre", zeros_disclosive=zeros)
    path = tmp_path / "age_sex_table.csv"
    path.write_text("age_band,sex,persons\n0-9,female,25\n0-9,male,31\n0-9,other,0\n10-19,other,0\n")
    got, out = run("--tre", "a-tre", "--json", path)
    data = json.loads(out)
    assert got == status
    assert [flag["rule"] for flag in data["files"][0]["flags"]] == rules
    assert all(flag["field"] == 2 and flag["value"] == "0" for flag in data["files"][0]["flags"])
