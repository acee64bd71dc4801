"""Issue 16: the demo workflow's table, made from each demo TRE's synthetic data, is checked for the
right reasons and combines across the three demo TREs."""

import subprocess
import sys
from pathlib import Path

import pytest

from agent.synthetic import generate, write_sqlite
from crates.demo_agents import DATASETS
from reviews import federation
from reviews.sdc import DisclosurePolicy, check_table_bytes, strictest

SCRIPT = Path(__file__).parents[3] / "agent/demo_workflows/age_sex_table/count_by_age_sex.py"


@pytest.fixture(scope="module")
def demo_tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    tables = {}
    for slug, (persons, seed) in DATASETS.items():
        dataset, out = folder / f"{slug}.sqlite", folder / f"{slug}.csv"
        write_sqlite(generate(persons, seed), dataset)
        subprocess.run(
            [sys.executable, SCRIPT, "--dataset", dataset, "--reference-year", "2025", "--out", out],
            check=True,
        )
        tables[slug] = out.read_bytes()
    return tables


def test_each_demo_table_passes_when_zeros_are_not_disclosive(demo_tables):
    for slug, data in demo_tables.items():
        result = check_table_bytes(data, DisclosurePolicy(zeros_disclosive=False), path=f"{slug}.csv")
        assert result.verdict == "pass", (slug, result.all_flags)
        assert len(result.cells) == 30


def test_each_demo_table_fails_only_on_its_zeros_when_they_are_disclosive(demo_tables):
    for slug, data in demo_tables.items():
        result = check_table_bytes(data, DisclosurePolicy(zeros_disclosive=True), path=f"{slug}.csv")
        assert result.verdict == "fail"
        assert {(flag.row[1], flag.value) for flag in result.all_flags} == {("other", "0")}
        assert {flag.rule for flag in result.all_flags} == {"zeros", "threshold"}


def test_the_demo_tables_combine_across_the_three_demo_tres(demo_tables):
    tables = [federation.read_table(data, slug) for slug, data in demo_tables.items()]
    labels, values, rows, notes = federation.combine_tables(tables)
    assert (labels, values) == (("age_band", "sex"), ("persons",))
    assert len(rows) == 30 and notes == []
    total = sum(cells["persons"] for cells in rows.values())
    assert total == sum(persons for persons, _ in DATASETS.values())
    assert rows["90+", "other"] == {"persons": 0}
    # Re-checked under the strictest policy, as combine() does.
    data = "age_band,sex,persons\n" + "".join(f"{b},{s},{c['persons']}\n" for (b, s), c in rows.items())
    policy = strictest(DisclosurePolicy(), DisclosurePolicy(min_cell_count=20))
    assert check_table_bytes(data.encode(), policy, path="combined.csv").verdict == "pass"


def test_a_table_that_reads_several_ways_is_combined_only_as_declared():
    data = b"code,A,B\n1,15,59\n2,15,80\n"
    with pytest.raises(federation.CombineError, match="can be read in 2 ways"):
        federation.read_table(data, "coded.csv at TRE A")
    table = federation.read_table(data, "coded.csv at TRE A", {"labels": ["code"], "counts": ["A", "B"]})
    assert table.rows == {("1",): {"A": 15, "B": 59}, ("2",): {"A": 15, "B": 80}}
