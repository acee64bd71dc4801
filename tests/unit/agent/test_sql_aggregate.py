"""sql-aggregate: query validation, parameterised SQL, disclosure control, SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from agent.config import Dataset
from agent.demo_workflows import COHORT_QUERY
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.executors.sql_aggregate import (
    QueryError,
    _count_postgresql,
    _count_sqlite,
    _Interrupted,
    apply_disclosure,
    compile_count_query,
    count_cohort,
    dialect_for,
    parse_query,
)
from agent.synthetic import SyntheticDataset, write_postgresql

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
WORKFLOW_ID = "https://portal.example.org/workflows/cohort-count"
REFERENCE_YEAR = 2025


def rule(varcat: str, value: str, *, oper: str = "=", type_: str = "TEXT", varname: str = "OMOP") -> dict:
    return {"varname": varname, "varcat": varcat, "type": type_, "oper": oper, "value": value}


def query(*groups: list[dict], groups_oper: str = "AND", rules_oper: str = "AND") -> dict:
    return {
        "cohort": {
            "groups_oper": groups_oper,
            "groups": [{"rules_oper": rules_oper, "rules": g} for g in groups],
        }
    }


# --------------------------------------------------------------------------- an independent reference
def expected_count(synthetic: SyntheticDataset, document: dict) -> int:
    """The raw count, computed in Python from the generated rows (not through SQL)."""
    rows = synthetic.rows
    everyone = {row[0] for row in rows["person"]}
    by_table = {
        "Condition": ("condition_occurrence", None),
        "Drug": ("drug_exposure", None),
        "Observation": ("observation", 4),
        "Measurement": ("measurement", 4),
        "Procedure": ("procedure_occurrence", None),
    }

    def matches(r: dict) -> set[int]:
        low, high = None, None
        if r.get("type") == "NUM":
            low_text, high_text = r["value"].split("|")
            low, high = (float(low_text) if low_text else None), (float(high_text) if high_text else None)
        if r["varcat"] == "Person" and r.get("type") == "NUM":
            found = {
                p[0]
                for p in rows["person"]
                if (low is None or REFERENCE_YEAR - p[2] >= low)
                and (high is None or REFERENCE_YEAR - p[2] <= high)
            }
        elif r["varcat"] == "Person":
            found = {p[0] for p in rows["person"] if int(r["value"]) in (p[1], p[5], p[6])}
        else:
            table, value_column = by_table[r["varcat"]]
            concept = int(r["varname"].split("=")[1]) if r.get("type") == "NUM" else int(r["value"])
            found = {
                row[1]
                for row in rows[table]
                if row[2] == concept
                and (low is None or (row[value_column] is not None and row[value_column] >= low))
                and (high is None or (row[value_column] is not None and row[value_column] <= high))
            }
        return everyone - found if r.get("oper") == "!=" else found

    def combine(sets: list[set[int]], operator: str) -> set[int]:
        return set.intersection(*sets) if operator == "AND" else set.union(*sets)

    cohort = document["cohort"]
    groups = [combine([matches(r) for r in g["rules"]], g.get("rules_oper", "AND")) for g in cohort["groups"]]
    return len(combine(groups, cohort.get("groups_oper", "AND")))


QUERIES = {
    "demo": json.loads(COHORT_QUERY.read_text()),
    "diabetes": query([rule("Condition", "201826")]),
    "female-or-smoker": query([rule("Person", "8532"), rule("Observation", "4298794")], rules_oper="OR"),
    "hypertensive-without-lisinopril": query(
        [rule("Condition", "316866"), rule("Drug", "1308216", oper="!=")]
    ),
    "obese-adults": query(
        [rule("Measurement", "30|", type_="NUM", varname="OMOP=3038553")],
        [rule("Person", "18|64", type_="NUM", varname="AGE")],
    ),
    "one-year-olds": query([rule("Person", "1|1", type_="NUM", varname="AGE")]),
}


# --------------------------------------------------------------------------- disclosure control
@pytest.mark.parametrize(
    ("raw", "reported"),
    [
        (0, 0),
        (1, 0),
        (9, 0),
        (10, 10),
        (11, 10),
        (14, 10),
        (15, 20),
        (16, 20),
        (24, 20),
        (25, 30),
        (26, 30),
        (99, 100),
        (104, 100),
        (105, 110),
        (1234, 1230),
        (1235, 1240),
    ],
)
def test_suppression_below_10_then_rounding_half_up_to_10(raw, reported):
    assert apply_disclosure(raw) == reported


@pytest.mark.parametrize(
    ("raw", "threshold", "base", "reported"),
    [
        (4, 5, 5, 0),
        (5, 5, 5, 5),
        (7, 5, 5, 5),
        (8, 5, 5, 10),
        (12, 5, 5, 10),
        (13, 5, 5, 15),
        (19, 20, 10, 0),
        (20, 20, 10, 20),
    ],
)
def test_other_thresholds_and_bases(raw, threshold, base, reported):
    assert apply_disclosure(raw, threshold=threshold, base=base) == reported


def test_disclosure_rejects_nonsense():
    with pytest.raises(ValueError, match="negative"):
        apply_disclosure(-1)
    with pytest.raises(ValueError, match="rounding base positive"):
        apply_disclosure(10, base=0)


# --------------------------------------------------------------------------- validation and compilation
@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], r"\$: the query must be a JSON object"),
        ({"analysis": "DEMOGRAPHICS", "cohort": {}}, r"\$.analysis: distribution queries are not supported"),
        ({"cohort": {"groups": []}}, r"\$.cohort.groups: required, a non-empty list"),
        ({"sql": "SELECT 1", "cohort": {}}, r"\$: unknown key\(s\) sql"),
        (
            query([rule("Condition", "201826; DROP TABLE person")]),
            r"rules\[0\].value: expected an OMOP concept id",
        ),
        (query([rule("Visit", "9201")]), r"rules\[0\].varcat: expected one of Person, Condition"),
        (
            query([rule("Condition", "201826", oper="<")]),
            r"rules\[0\].oper: expected = \(include\) or != \(exclude\)",
        ),
        (
            query([rule("Condition", "1|2", type_="NUM")]),
            r"NUM rules apply to Person \(AGE\), Measurement and Observation",
        ),
        (
            query([rule("Person", "50|18", type_="NUM", varname="AGE")]),
            "lower bound is above the upper bound",
        ),
        (query([rule("Person", "|", type_="NUM", varname="AGE")]), "give at least one bound"),
        (query([rule("Measurement", "1|x", type_="NUM", varname="OMOP=3004410")]), "'x' is not a number"),
        (query([rule("Measurement", "1|2", type_="NUM", varname="OMOP")]), "varname OMOP=<concept id>"),
        (query([{**rule("Condition", "201826"), "time": "|1:TIME:Y"}]), "time constraints are not supported"),
        (
            query([rule("Condition", "201826")], groups_oper="XOR"),
            r"\$.cohort.groups_oper: expected AND or OR",
        ),
        (query(*[[rule("Condition", "201826")]] * 21), "at most 20 groups"),
    ],
)
def test_invalid_queries_are_refused_with_the_json_path(document, message):
    with pytest.raises(QueryError, match=message):
        parse_query(document)


def test_values_are_bound_parameters_never_sql_text(tmp_path):
    parsed = parse_query(
        query(
            [
                rule("Condition", "OMOP:201826"),
                rule("Measurement", "6.5|9", type_="NUM", varname="OMOP=3004410"),
            ]
        )
    )

    sql, params = compile_count_query(
        parsed, dialect_for(Dataset("d", sqlite_path=tmp_path)), reference_year=2025
    )
    assert params == [201826, 3004410, 6.5, 9.0]
    assert "201826" not in sql and "3004410" not in sql and "6.5" not in sql
    assert sql.count("?") == 4

    pg_sql, _ = compile_count_query(
        parsed,
        dialect_for(Dataset("d", postgresql_dsn="postgresql://x/y", schema="cdm")),
        reference_year=2025,
    )
    assert '"cdm"."condition_occurrence"' in pg_sql
    assert pg_sql.count("%s") == 4


# --------------------------------------------------------------------------- SQLite
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_sqlite_counts_match_an_independent_computation(name, synthetic, synthetic_sqlite):
    document = QUERIES[name]

    raw = count_cohort(
        Dataset("omop", sqlite_path=synthetic_sqlite),
        parse_query(document),
        reference_year=REFERENCE_YEAR,
        timeout_seconds=30,
    )

    assert raw == expected_count(synthetic, document)


def test_the_executor_writes_only_the_disclosure_controlled_count(
    make_config, make_job, synthetic, synthetic_sqlite
):
    config = make_config(
        f"""
[datasets.omop]
sqlite_path = "{synthetic_sqlite}"

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "sql-aggregate"
options = {{ dataset = "omop", age_reference_year = {REFERENCE_YEAR} }}
"""
    )
    results = {}
    for name in ("demo", "one-year-olds"):
        job = make_job(WORKFLOW_ID, parameters={"query": json.dumps(QUERIES[name])}, job_id=f"sql-{name}")
        results[name] = (job, execute(job, config))

    for name, (job, result) in results.items():
        raw = expected_count(synthetic, QUERIES[name])
        assert result.status is ExecutionStatus.COMPLETED, result.reason
        assert [output.path for output in result.outputs] == ["cohort_count.json", "cohort_count.csv"]
        document = json.loads((job.directory.outputs / "cohort_count.json").read_text())
        assert document["count"] == apply_disclosure(raw)
        assert document["disclosure_control"]["rounding"] == {"nearest": 10, "rule": "round half up"}
        (row,) = csv.DictReader((job.directory.outputs / "cohort_count.csv").read_text().splitlines())
        assert row == {
            "measure": "cohort_count",
            "count": str(apply_disclosure(raw)),
            "suppression_threshold": "10",
            "rounding_nearest": "10",
        }
        # The raw count is written nowhere in the job directory (unless it equals the safe one).
        if raw != apply_disclosure(raw):
            for path in job.directory.root.rglob("*"):
                if path.is_file():
                    assert f'"count": {raw}' not in path.read_text(errors="replace")
    assert 0 < expected_count(synthetic, QUERIES["one-year-olds"]) < 10
    assert (
        json.loads((results["one-year-olds"][0].directory.outputs / "cohort_count.json").read_text())["count"]
        == 0
    )


def test_a_query_file_parameter_is_read(make_config, make_job, synthetic_sqlite):
    config = make_config(
        f'[datasets.omop]\nsqlite_path = "{synthetic_sqlite}"\n[[workflows]]\nid = "q"\nversion = "1"\n'
        'executor = "sql-aggregate"\noptions = { dataset = "omop", query_parameter = "body" }\n'
    )
    job = make_job("q")
    (job.directory.inputs / "query.json").write_text(COHORT_QUERY.read_text())

    ok = execute(
        type(job)(
            job.id, "q", "1", job.directory, {"body": job.directory.inputs / "query.json"}, policy=job.policy
        ),
        config,
    )
    missing = execute(job, config)
    invalid = execute(
        type(job)(job.id, "q", "1", job.directory, {"body": '{"cohort": 1}'}, policy=job.policy), config
    )

    assert ok.status is ExecutionStatus.COMPLETED
    assert missing.status is ExecutionStatus.FAILED
    assert missing.reason == "invalid query: the job has no 'body' parameter holding the cohort query"
    assert invalid.reason == "invalid query: $.cohort: required, an object with groups and groups_oper"
    assert list(job.directory.outputs.iterdir()) == []


def test_sqlite_connection_is_read_only_and_interruptible(synthetic_sqlite):
    with pytest.raises(Exception, match="readonly|read-only"):
        _count_sqlite(
            synthetic_sqlite, "INSERT INTO concept VALUES (1, 'x', 'y') RETURNING concept_id", [], 5, None
        )
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    with pytest.raises(_Interrupted) as timed_out:
        _count_sqlite(synthetic_sqlite, endless, [], 0.2, None)
    assert not timed_out.value.cancelled
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(_Interrupted) as cancelled:
        _count_sqlite(synthetic_sqlite, endless, [], 30, cancel)
    assert cancelled.value.cancelled


# --------------------------------------------------------------------------- PostgreSQL
@pytest.fixture(scope="module")
def postgres_schema(synthetic):
    schema = f"agent_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN) as connection:
        write_postgresql(synthetic, connection, schema)
    try:
        yield schema
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
            connection.execute(
                psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(schema))
            )


def test_postgresql_counts_match_sqlite_and_the_reference(postgres_schema, synthetic, synthetic_sqlite):
    postgres = Dataset("pg", postgresql_dsn=POSTGRES_DSN, schema=postgres_schema)
    sqlite = Dataset("omop", sqlite_path=synthetic_sqlite)
    for name, document in QUERIES.items():
        parsed = parse_query(document)
        counted = [
            count_cohort(d, parsed, reference_year=REFERENCE_YEAR, timeout_seconds=30)
            for d in (postgres, sqlite)
        ]
        assert counted == [expected_count(synthetic, document)] * 2, name


def test_the_executor_runs_on_postgresql(make_config, make_job, postgres_schema, synthetic):
    config = make_config(
        f"""
[datasets.pg]
postgresql_dsn = "{POSTGRES_DSN}"
schema = "{postgres_schema}"

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "sql-aggregate"
options = {{ dataset = "pg", age_reference_year = {REFERENCE_YEAR}, suppression_threshold = 20, rounding_base = 5 }}
"""
    )
    job = make_job(WORKFLOW_ID, parameters={"query": json.dumps(QUERIES["diabetes"])})

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    document = json.loads((job.directory.outputs / "cohort_count.json").read_text())
    raw = expected_count(synthetic, QUERIES["diabetes"])
    assert document["count"] == apply_disclosure(raw, threshold=20, base=5)
    assert document["disclosure_control"]["low_number_suppression"]["threshold"] == 20


def test_postgresql_connection_is_read_only_and_interruptible(postgres_schema):
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _count_postgresql(
            POSTGRES_DSN,
            f"INSERT INTO \"{postgres_schema}\".concept VALUES (1, 'x', 'y') RETURNING 1",  # noqa: S608 - test schema
            [],
            5,
            None,
        )
    with pytest.raises(_Interrupted) as timed_out:
        _count_postgresql(POSTGRES_DSN, "SELECT pg_sleep(10)", [], 0.3, None)
    assert not timed_out.value.cancelled
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(_Interrupted) as cancelled:
        _count_postgresql(POSTGRES_DSN, "SELECT pg_sleep(10)", [], 30, cancel)
    assert cancelled.value.cancelled


def test_unreadable_datasets_fail_the_job_with_a_generic_reason(make_config, make_job, tmp_path: Path):
    config = make_config(
        f'[datasets.omop]\nsqlite_path = "{tmp_path / "absent.sqlite"}"\n[[workflows]]\nid = "q"\nversion = "1"\n'
        'executor = "sql-aggregate"\noptions = { dataset = "omop" }\n'
    )
    job = make_job("q", parameters={"query": json.dumps(QUERIES["diabetes"])})

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "database error (OperationalError)"


# --------------------------------------------------------------------------- the TRE's policy (issue 16)
def _cohort_config(make_config, synthetic_sqlite, options=""):
    return make_config(
        f"""
[datasets.omop]
sqlite_path = "{synthetic_sqlite}"

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "sql-aggregate"
options = {{ dataset = "omop", age_reference_year = {REFERENCE_YEAR}{options} }}
"""
    )


def _written(job):
    (row,) = csv.DictReader((job.directory.outputs / "cohort_count.csv").read_text().splitlines())
    return row


@pytest.mark.parametrize(
    ("policy", "options", "threshold", "base"),
    [
        # The TRE's policy governs when agent.toml is laxer ...
        (
            {"min_cell_count": 50, "zeros_disclosive": False, "rounding_base": 0},
            ", suppression_threshold = 5, rounding_base = 1",
            50,
            1,
        ),
        ({"min_cell_count": 10, "zeros_disclosive": False, "rounding_base": 5}, ", rounding_base = 1", 10, 5),
        # ... and agent.toml only ever makes it stricter: the higher threshold, a base both divide.
        (
            {"min_cell_count": 10, "zeros_disclosive": False, "rounding_base": 0},
            ", suppression_threshold = 20",
            20,
            10,
        ),
        (
            {"min_cell_count": 10, "zeros_disclosive": False, "rounding_base": 4},
            ", rounding_base = 10",
            10,
            20,
        ),
    ],
)
def test_the_tres_policy_sets_suppression_and_rounding_and_the_toml_only_tightens(
    make_config, make_job, synthetic, synthetic_sqlite, policy, options, threshold, base
):
    config = _cohort_config(make_config, synthetic_sqlite, options)
    job = make_job(WORKFLOW_ID, parameters={"query": json.dumps(QUERIES["demo"])}, policy=policy)
    result = execute(job, config)
    assert result.status is ExecutionStatus.COMPLETED, result.reason
    raw = expected_count(synthetic, QUERIES["demo"])
    assert _written(job) == {
        "measure": "cohort_count",
        "count": str(apply_disclosure(raw, threshold=threshold, base=base)),
        "suppression_threshold": str(threshold),
        "rounding_nearest": str(base),
    }
    assert result.details["disclosure_control"]["rounding"]["nearest"] == base


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        ({}, "refused: the portal sent no disclosure policy with the job"),
        ({"min_cell_count": 10, "zeros_disclosive": True, "rounding_base": 0}, "zero counts disclosive"),
        ({"min_cell_count": 0, "zeros_disclosive": False, "rounding_base": 0}, "minimum cell count 0"),
        ({"min_cell_count": 10, "zeros_disclosive": "no", "rounding_base": 0}, "zeros setting"),
    ],
)
def test_a_policy_the_agent_cannot_honour_refuses_the_job_before_the_query(
    make_config, make_job, synthetic_sqlite, policy, reason
):
    config = _cohort_config(make_config, synthetic_sqlite)
    job = make_job(WORKFLOW_ID, parameters={"query": json.dumps(QUERIES["demo"])}, policy=policy)
    result = execute(job, config)
    assert result.status is ExecutionStatus.FAILED
    assert reason in result.reason and result.reason.startswith("refused: ")
    assert list(job.directory.outputs.iterdir()) == []
    assert not (job.directory.logs / "sql-aggregate.log").exists()  # no statement ever ran
