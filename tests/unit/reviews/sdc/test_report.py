import json
import os
import shutil

from reviews.sdc.policy import ACRO_POLICY, DEFAULT_POLICY
from reviews.sdc.report import check_paths
from reviews.sdc.verdicts import Rule, Verdict

from .vectors import INPUTS, finalise_folder


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_folder_is_walked_recursively_in_sorted_order(tmp_path):
    write(tmp_path / "b.csv", "row,C1\nR1,25\n")
    write(tmp_path / "a.csv", "row,C1\nR1,9\n")
    write(tmp_path / "figures" / "plot.png", "png")
    write(tmp_path / "figures" / "deeper" / "counts.csv", "row,C1\nR1,12\n")
    report = check_paths([tmp_path])
    shown = [os.path.relpath(result.path, tmp_path) for result in report.files]
    assert shown == ["a.csv", "b.csv", "figures/plot.png", "figures/deeper/counts.csv"]
    assert [result.verdict for result in report.files] == [
        Verdict.FAIL,
        Verdict.PASS,
        Verdict.REVIEW,
        Verdict.PASS,
    ]
    assert report.verdict is Verdict.FAIL
    assert report.counts() == {"files": 4, "pass": 2, "review": 1, "fail": 1}


def test_paths_are_shown_as_given(tmp_path, monkeypatch):
    write(tmp_path / "out" / "t.csv", "row,C1\nR1,25\n")
    monkeypatch.chdir(tmp_path)
    assert [result.path for result in check_paths(["out"]).files] == [os.path.join("out", "t.csv")]


def test_a_file_reached_twice_is_checked_once(tmp_path):
    path = write(tmp_path / "t.csv", "row,C1\nR1,25\n")
    assert len(check_paths([path, tmp_path, str(path)]).files) == 1


def test_an_acro_folder_is_judged_by_its_results_json():
    report = check_paths([finalise_folder("1.0.2")], ACRO_POLICY)
    listed = json.loads((finalise_folder("1.0.2") / "results.json").read_text())["results"]
    names = {entry["name"] for record in listed.values() for entry in record["files"]}
    assert {os.path.basename(result.path) for result in report.files} == names
    assert {result.source for result in report.files} == {"ACRO 1.0.2"}
    skipped = {os.path.relpath(entry.path, finalise_folder("1.0.2")) for entry in report.skipped}
    assert skipped == {"results.json", "config.json"} | {
        os.path.join("checksums", name) for name in os.listdir(finalise_folder("1.0.2") / "checksums")
    }
    assert report.unreadable == ()


def test_files_an_acro_folder_does_not_list_get_the_portals_checks(tmp_path):
    folder = shutil.copytree(finalise_folder("0.4.12"), tmp_path / "out")
    write(folder / "extra.csv", "row,C1\nR1,3\n")
    report = check_paths([folder], ACRO_POLICY)
    extra = next(result for result in report.files if result.path.endswith("extra.csv"))
    assert (extra.source, extra.verdict) == ("portal", Verdict.FAIL)


def test_a_file_given_alone_is_judged_by_the_results_json_beside_it():
    (result,) = check_paths([finalise_folder("0.4.12") / "output_3_0.csv"], ACRO_POLICY).files
    assert (result.source, result.verdict) == ("ACRO 0.4.12", Verdict.REVIEW)
    assert result.cell("A_ok", "value").rules == {Rule.NEGATIVE}


def test_results_json_given_alone_brings_the_files_it_lists():
    report = check_paths([finalise_folder("0.4.12") / "results.json"], ACRO_POLICY)
    assert len(report.files) == 10
    assert [entry.path for entry in report.skipped] == [str(finalise_folder("0.4.12") / "results.json")]


def test_files_results_json_lists_but_the_folder_lacks_are_reported(tmp_path):
    folder = shutil.copytree(finalise_folder("1.0.2"), tmp_path / "out")
    (folder / "output_1_0.csv").unlink()
    report = check_paths([folder], ACRO_POLICY)
    missing = next(result for result in report.files if result.path.endswith("output_1_0.csv"))
    assert Rule.INTEGRITY in {flag.rule for flag in missing.flags}


def test_a_broken_results_json_is_reported_and_the_files_checked_by_the_portal(tmp_path):
    write(tmp_path / "results.json", "{")
    write(tmp_path / "t.csv", "row,C1\nR1,25\n")
    report = check_paths([tmp_path])
    results, table = report.files
    assert (results.kind, results.verdict, results.flags[0].rule) == (
        "acro results",
        Verdict.REVIEW,
        Rule.FORMAT,
    )
    assert (table.source, table.verdict) == ("portal", Verdict.PASS)
    assert report.skipped == ()


def test_unreadable_paths_are_reported_and_stop_a_pass(tmp_path):
    write(tmp_path / "t.csv", "row,C1\nR1,25\n")
    report = check_paths([tmp_path, tmp_path / "missing.csv"])
    assert [entry.message for entry in report.unreadable] == ["No such file or folder."]
    assert report.files[0].verdict is Verdict.PASS
    assert report.verdict is Verdict.REVIEW


def test_broken_links_are_unreadable(tmp_path):
    (tmp_path / "link.csv").symlink_to(tmp_path / "gone.csv")
    report = check_paths([tmp_path / "link.csv"])
    assert report.unreadable[0].message == "Not a regular file or folder (or a broken link)."


def test_links_to_folders_are_not_followed(tmp_path):
    write(tmp_path / "elsewhere" / "t.csv", "row,C1\nR1,3\n")
    write(tmp_path / "out" / "ok.csv", "row,C1\nR1,25\n")
    (tmp_path / "out" / "linked").symlink_to(tmp_path / "elsewhere")
    report = check_paths([tmp_path / "out"])
    assert [result.path for result in report.files] == [str(tmp_path / "out" / "ok.csv")]
    assert report.unreadable[0].path == str(tmp_path / "out" / "linked")
    assert "links are not followed" in report.unreadable[0].message


def test_an_empty_folder_passes_with_nothing_to_report(tmp_path):
    report = check_paths([tmp_path])
    assert (report.files, report.verdict) == ((), Verdict.PASS)
    assert "No files found." in report.to_text()


def test_to_dict_lists_every_flagged_cell_with_its_location():
    report = check_paths([INPUTS / "v1_frequency_microdata.csv"], ACRO_POLICY)
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"verdict", "policy", "counts", "files", "unreadable", "skipped"}
    assert data["verdict"] == "fail"
    assert data["policy"]["version"] == ACRO_POLICY.version
    (file,) = data["files"]
    assert set(file) == {
        "path", "verdict", "kind", "shape", "source", "policy_version", "cells_checked", "flags", "notes",
        "justification", "comments", "label_columns",
    }  # fmt: skip
    assert file["cells_checked"] == 9
    zero = [flag for flag in file["flags"] if flag["row"] == ["R3"] and flag["column"] == "C3"]
    assert [(flag["rule"], flag["verdict"], flag["value"]) for flag in zero] == [
        ("zeros", "fail", "0"),
        ("threshold", "fail", "0"),
    ]
    assert all(flag["file"] == file["path"] and flag["position"] == [2, 2] for flag in zero)
    (row_level,) = [flag for flag in file["flags"] if flag["row"] is None]
    assert row_level["rule"] == "manual"


def test_to_text_reads_as_a_report(tmp_path):
    write(tmp_path / "t.csv", "row,C1\nR1,9\n")
    text = check_paths([tmp_path, tmp_path / "nope"], DEFAULT_POLICY).to_text()
    assert text.startswith("Disclosure check: FAIL (1 file(s): 1 fail, 0 review, 0 pass)\n")
    assert f"Policy {DEFAULT_POLICY.version}: min cell count 10;" in text
    assert f"FAIL    {tmp_path / 't.csv'}  (table, long; checked by portal)" in text
    assert (
        "    row R1, column C1 = 9 (line 2): threshold (fail) 9 is below the minimum cell count of 10."
        in text
    )
    assert f"UNREADABLE {tmp_path / 'nope'}: No such file or folder." in text


def test_to_text_shows_acros_justification_and_comments():
    text = check_paths([finalise_folder("1.0.2")], ACRO_POLICY).to_text()
    assert "    justification: Cells R1/C3 (9) and R2/C1 (1) are structural" in text
    assert "    comment: example researcher comment" in text
