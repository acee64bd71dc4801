"""The one way a name from a crate becomes a path: generated hostile names never leave data/."""

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crates.fivesafes import paths
from crates.fivesafes.errors import CrateRefused

# Pieces an attacker strings together; each one alone makes a name unsafe.
HOSTILE_PARTS = [
    "..",
    ".",
    "a//b",  # an empty part (one trailing '/' only marks a folder)
    "%2e%2e",
    "%2E%2e",
    "..%2f..",
    "%2f",
    "%5c",
    "%00",
    "%252e%252e",
    "a\\..\\b",
    "\\",
    "x\x00y",
    "new\nline",
    "CON",
    "con.txt",
    "NUL",
    "nul.csv",
    "COM1",
    "lpt9.log",
    "AUX ",
    "C:",
    "c:secret",
    "name.",
    "ab:c",
    "\uff0e\uff0e",  # FULLWIDTH FULL STOP twice: '..' after NFKC
    "a\u2024",  # ONE DOT LEADER: ends in '.' after NFKC
    "x\uff0fy",  # FULLWIDTH SOLIDUS: '/' after NFKC
    'a"b',
    "a|b",
    "a*b",
    "a?b",
    "a<b>",
]
SAFE_PART = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "bag" / "data"
    (folder / "outputs").mkdir(parents=True)
    (folder / "outputs" / "counts.csv").write_text("a,b\n")
    return folder


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(SAFE_PART, max_size=3),
    hostile=st.sampled_from(HOSTILE_PARTS),
    after=st.lists(SAFE_PART, max_size=3),
    absolute=st.booleans(),
)
def test_a_name_with_any_hostile_part_is_refused(data, before, hostile, after, absolute):
    name = ("/" if absolute else "") + "/".join([*before, hostile, *after])
    with pytest.raises(CrateRefused) as refused:
        paths.resolve(data, name)
    assert refused.value.code == "path.unsafe"
    assert refused.value.where  # the refusal names the entry


@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=80) | st.lists(st.sampled_from([*HOSTILE_PARTS, "a", "b"])).map("/".join))
def test_whatever_is_accepted_stays_inside_data(data, name):
    try:
        target = paths.resolve(data, name)
    except CrateRefused as refused:
        assert refused.code == "path.unsafe"
        return
    root = data.resolve()
    assert target.resolve().is_relative_to(root)
    assert target != root
    relative = target.relative_to(root).parts
    assert ".." not in relative and "." not in relative


def test_absolute_and_escaping_names_are_refused(data, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the portal's secret key")
    for name in [str(secret), "../../secret.txt", "outputs/../../../secret.txt", "//host/share/x"]:
        with pytest.raises(CrateRefused):
            paths.resolve(data, name)
    assert secret.read_text() == "the portal's secret key"


def test_a_link_on_the_way_is_refused_even_when_it_points_inside(data, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "hostname").write_text("portal-host")
    os.symlink(outside, data / "escape")
    os.symlink(data / "outputs", data / "inner")
    for name in ["escape/hostname", "escape", "inner/counts.csv"]:
        with pytest.raises(CrateRefused, match="symbolic link"):
            paths.resolve(data, name)
    with pytest.raises(CrateRefused):
        paths.remove(data, "escape")
    assert (outside / "hostname").read_text() == "portal-host"


def test_plain_names_resolve_inside_data(data):
    assert paths.resolve(data, "outputs/counts.csv") == data.resolve() / "outputs" / "counts.csv"
    assert paths.resolve(data, "outputs/") == data.resolve() / "outputs"
    assert paths.resolve(data, "outputs/not yet written.csv").parent == data.resolve() / "outputs"
    assert paths.resolve(data, "outputs/table%20one.csv").name == "table%20one.csv"


def test_remove_deletes_only_inside_data(data, tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    assert paths.remove(data, "outputs/counts.csv") is True
    assert paths.remove(data, "outputs/counts.csv") is False
    with pytest.raises(CrateRefused):
        paths.remove(data, "../../keep.txt")
    with pytest.raises(CrateRefused):
        paths.remove(data, str(keep))
    assert keep.read_text() == "mine"


def test_declared_results_skip_web_resources_and_refuse_non_text_ids():
    doc = {
        "@graph": [
            {
                "@id": "#run",
                "@type": "CreateAction",
                "result": [{"@id": "outputs/a.csv"}, {"@id": "https://example.org/x"}, {"@id": "out/"}],
            }
        ]
    }
    assert paths.declared_results(doc) == ["outputs/a.csv", "out"]
    doc["@graph"][0]["result"].append({"@id": ["../x"]})
    with pytest.raises(CrateRefused):
        paths.declared_results(doc)


def test_intake_refuses_file_entities_named_outside_the_crate():
    ok = {"@graph": [{"@id": "./", "@type": "Dataset"}, {"@id": "inputs/a.txt", "@type": "File"}]}
    assert paths.check_data_entities(ok) == ["inputs/a.txt"]
    for name in ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "inputs\\..\\..\\x", "NUL"]:
        doc = {"@graph": [{"@id": name, "@type": "File"}]}
        with pytest.raises(CrateRefused):
            paths.check_data_entities(doc)
    web = {"@graph": [{"@id": "https://example.org/data.csv", "@type": "File"}]}
    assert paths.check_data_entities(web) == []
