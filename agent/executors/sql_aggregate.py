"""``sql-aggregate``: a safe cohort count, in the manner of the HDR UK Cohort Discovery availability query.

The researcher supplies no code, only a structured query (JSON) naming OMOP concepts; the agent's own,
reviewed code compiles it to parameterised SQL, runs it over a read-only connection to a TRE dataset in
an OMOP-like shape, and returns one count after disclosure control. The raw count never leaves this
module: it is not logged and not written anywhere.

Query format (the RQuest ``cohort`` object)::

    {"cohort": {
        "groups_oper": "AND" | "OR",
        "groups": [
            {"rules_oper": "AND" | "OR",
             "rules": [{"varcat": "Condition", "type": "TEXT", "oper": "=", "value": "201826"}, ...]},
            ...]}}

A rule selects the persons who have the concept (``oper`` ``=``) or everyone else (``oper`` ``!=``):

=============================  ===========================================================================
``varcat`` / ``type``          meaning
=============================  ===========================================================================
``Person`` / ``TEXT``          ``value`` is a gender, race or ethnicity concept id of the person
``Person`` / ``NUM``           ``varname`` ``AGE``; ``value`` ``"lo|hi"`` is an age range in whole years
                               (either bound may be empty), age = reference year - year of birth
``Condition``, ``Drug``,       ``value`` is a concept id recorded in condition_occurrence, drug_exposure,
``Observation``,               observation, measurement or procedure_occurrence
``Measurement``,
``Procedure`` / ``TEXT``
``Measurement``,               ``varname`` ``OMOP=<concept id>``; ``value`` ``"lo|hi"`` bounds
``Observation`` / ``NUM``      ``value_as_number`` of that concept (inclusive; either bound may be empty)
=============================  ===========================================================================

Rules in a group are combined with ``rules_oper``, groups with ``groups_oper`` (SQL ``INTERSECT`` for
AND, ``UNION`` for OR); the result is the number of distinct persons. Envelope keys of an RQuest task
(``task_id``, ``project``, ...) are accepted and ignored; distribution queries (``analysis``) and time
constraints on rules are refused.

Disclosure control (:func:`apply_disclosure`), one rule applied once, in Python:

1. low-number suppression: a count below the threshold becomes 0;
2. rounding: the count is rounded to the nearest multiple of the base, halves rounding up
   (15 -> 20, 25 -> 30), in integer arithmetic.

The threshold and base come from the TRE's policy sent with the job (``agent.policy``); the route's
``suppression_threshold`` and ``rounding_base`` (default 10 and 10) may only make them stricter: the
higher threshold, and a base that is a multiple of both. A job without a policy, or whose policy makes
zeros disclosive (suppressed counts are reported as 0), is refused before the query runs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import psycopg

import agent
from agent.config import AgentConfig, ConfigError, Dataset, Table, WorkflowRoute
from agent.executors.base import (
    Engine,
    ExecutionResult,
    ExecutionStatus,
    OutputError,
    OutputFile,
    clear_outputs,
    write_output,
)
from agent.jobs import Job
from agent.policy import DisclosureRules, PolicyNotHonoured, effective_rules

__all__ = [
    "CohortQuery",
    "QueryError",
    "Rule",
    "RuleGroup",
    "SqlAggregateExecutor",
    "SqlAggregateOptions",
    "apply_disclosure",
    "compile_count_query",
    "count_cohort",
    "parse_query",
]

MAX_GROUPS = 20
MAX_RULES = 100
_OPERATORS = {"AND": "INTERSECT", "OR": "UNION"}
_CONCEPT_TABLES = {
    "Condition": ("condition_occurrence", "condition_concept_id"),
    "Drug": ("drug_exposure", "drug_concept_id"),
    "Observation": ("observation", "observation_concept_id"),
    "Measurement": ("measurement", "measurement_concept_id"),
    "Procedure": ("procedure_occurrence", "procedure_concept_id"),
}
_NUMERIC_CATEGORIES = {"Measurement", "Observation"}
_ENVELOPE_KEYS = {
    "task_id",
    "project",
    "owner",
    "collection",
    "protocol_version",
    "char_salt",
    "uuid",
    "cohort",
}
_RULE_KEYS = {"varname", "varcat", "type", "oper", "value", "time"}
_CONCEPT_ID_RE = re.compile(r"^(?:OMOP:)?([0-9]{1,12})$")
_NUMERIC_VARNAME_RE = re.compile(r"^OMOP=([0-9]{1,12})$")
_NUMBER_RE = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


class QueryError(ValueError):
    """The query document is not a valid cohort query; the message gives the JSON path at fault."""


@dataclass(frozen=True)
class Rule:
    """One criterion. ``concept_id`` is set for concept rules and numeric measurement rules; ``low`` and
    ``high`` bound ages or values (``None`` = unbounded)."""

    category: str
    kind: str  # "concept", "age" or "value"
    exclude: bool
    concept_id: int | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class RuleGroup:
    rules: tuple[Rule, ...]
    operator: str  # "AND" or "OR"


@dataclass(frozen=True)
class CohortQuery:
    groups: tuple[RuleGroup, ...]
    operator: str  # "AND" or "OR"


def parse_query(document: Any) -> CohortQuery:
    """Validate a query document (the parsed JSON) and return the query it describes."""
    if not isinstance(document, Mapping):
        raise QueryError("$: the query must be a JSON object")
    if "analysis" in document:
        raise QueryError("$.analysis: distribution queries are not supported, only availability counts")
    unknown = sorted(set(document) - _ENVELOPE_KEYS)
    if unknown:
        raise QueryError(f"$: unknown key(s) {', '.join(unknown)}")
    cohort = document.get("cohort")
    if not isinstance(cohort, Mapping):
        raise QueryError("$.cohort: required, an object with groups and groups_oper")
    unknown = sorted(set(cohort) - {"groups", "groups_oper"})
    if unknown:
        raise QueryError(f"$.cohort: unknown key(s) {', '.join(unknown)}")
    operator = _operator(cohort.get("groups_oper", "AND"), "$.cohort.groups_oper")
    groups = cohort.get("groups")
    if not isinstance(groups, list) or not groups:
        raise QueryError("$.cohort.groups: required, a non-empty list")
    if len(groups) > MAX_GROUPS:
        raise QueryError(f"$.cohort.groups: at most {MAX_GROUPS} groups")
    parsed = tuple(_parse_group(group, f"$.cohort.groups[{index}]") for index, group in enumerate(groups))
    if sum(len(group.rules) for group in parsed) > MAX_RULES:
        raise QueryError(f"$.cohort.groups: at most {MAX_RULES} rules in all")
    return CohortQuery(parsed, operator)


def _operator(value: Any, where: str) -> str:
    if value not in _OPERATORS:
        raise QueryError(f"{where}: expected AND or OR, got {value!r}")
    return value


def _parse_group(group: Any, where: str) -> RuleGroup:
    if not isinstance(group, Mapping):
        raise QueryError(f"{where}: expected an object with rules and rules_oper")
    unknown = sorted(set(group) - {"rules", "rules_oper"})
    if unknown:
        raise QueryError(f"{where}: unknown key(s) {', '.join(unknown)}")
    rules = group.get("rules")
    if not isinstance(rules, list) or not rules:
        raise QueryError(f"{where}.rules: required, a non-empty list")
    operator = _operator(group.get("rules_oper", "AND"), f"{where}.rules_oper")
    return RuleGroup(
        tuple(_parse_rule(rule, f"{where}.rules[{index}]") for index, rule in enumerate(rules)), operator
    )


def _parse_rule(rule: Any, where: str) -> Rule:
    if not isinstance(rule, Mapping):
        raise QueryError(f"{where}: expected an object")
    unknown = sorted(set(rule) - _RULE_KEYS)
    if unknown:
        raise QueryError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if rule.get("time") not in (None, ""):
        raise QueryError(f"{where}.time: time constraints are not supported")
    category = rule.get("varcat")
    if category != "Person" and category not in _CONCEPT_TABLES:
        choices = ", ".join(["Person", *_CONCEPT_TABLES])
        raise QueryError(f"{where}.varcat: expected one of {choices}, got {category!r}")
    oper = rule.get("oper", "=")
    if oper not in ("=", "!="):
        raise QueryError(f"{where}.oper: expected = (include) or != (exclude), got {oper!r}")
    exclude = oper == "!="
    kind = rule.get("type", "TEXT")
    varname = rule.get("varname", "OMOP")
    value = rule.get("value")
    if kind == "TEXT":
        if varname not in ("OMOP", None, ""):
            raise QueryError(f"{where}.varname: a TEXT rule has varname OMOP, got {varname!r}")
        return Rule(category, "concept", exclude, concept_id=_concept_id(value, f"{where}.value"))
    if kind != "NUM":
        raise QueryError(f"{where}.type: expected TEXT or NUM, got {kind!r}")
    low, high = _range(value, f"{where}.value")
    if category == "Person":
        if varname != "AGE":
            raise QueryError(f"{where}.varname: a NUM rule on Person has varname AGE, got {varname!r}")
        return Rule(category, "age", exclude, low=low, high=high)
    if category not in _NUMERIC_CATEGORIES:
        raise QueryError(f"{where}.type: NUM rules apply to Person (AGE), Measurement and Observation")
    match = _NUMERIC_VARNAME_RE.match(varname) if isinstance(varname, str) else None
    if match is None:
        raise QueryError(f"{where}.varname: a NUM rule on {category} has varname OMOP=<concept id>")
    return Rule(category, "value", exclude, concept_id=int(match.group(1)), low=low, high=high)


def _concept_id(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (match := _CONCEPT_ID_RE.match(value.strip())):
        return int(match.group(1))
    raise QueryError(f"{where}: expected an OMOP concept id (a non-negative integer), got {value!r}")


def _range(value: Any, where: str) -> tuple[float | None, float | None]:
    if not isinstance(value, str) or value.count("|") != 1:
        raise QueryError(f'{where}: expected a range "low|high" (either bound may be empty), got {value!r}')
    bounds = []
    for part in value.split("|"):
        part = part.strip()
        if part and not _NUMBER_RE.match(part):
            raise QueryError(f"{where}: {part!r} is not a number")
        bounds.append(float(part) if part else None)
    low, high = bounds
    if low is None and high is None:
        raise QueryError(f"{where}: give at least one bound")
    if low is not None and high is not None and low > high:
        raise QueryError(f"{where}: the lower bound is above the upper bound")
    return low, high


# --------------------------------------------------------------------------- SQL compilation
class _Dialect:
    """Placeholder style and table naming of one database engine."""

    def __init__(self, placeholder: str, schema: str | None) -> None:
        self.placeholder = placeholder
        self.schema = schema

    def table(self, name: str) -> str:
        # Table names come from this module and the schema from validated configuration, never from the
        # query; quoting still keeps an odd schema name (e.g. one with capitals) meaning what it says.
        return f'"{self.schema}"."{name}"' if self.schema else f'"{name}"'


def dialect_for(dataset: Dataset) -> _Dialect:
    """The SQL dialect of ``dataset``'s engine: qmark placeholders for SQLite, format for psycopg."""
    if dataset.engine == "sqlite":
        return _Dialect("?", None)
    return _Dialect("%s", dataset.schema)


def _persons(source: str, where: str = "") -> str:
    """``SELECT person_id FROM <source> [WHERE <where>]``.

    The one place SQL text is assembled. Callers pass only table names from :data:`_CONCEPT_TABLES`
    (quoted by the dialect), derived tables built here, and conditions whose values are placeholders.
    """
    return f"SELECT person_id FROM {source}" + (f" WHERE {where}" if where else "")  # noqa: S608


def compile_count_query(
    query: CohortQuery, dialect: _Dialect, *, reference_year: int
) -> tuple[str, list[Any]]:
    """Compile ``query`` to one SQL statement returning the count of distinct persons, and its parameters.

    Every value from the query is a bound parameter; the SQL text is built only from this module's
    constants, so no query can change the statement's shape beyond the rules it combines.
    """
    params: list[Any] = []

    def bind(value: Any) -> str:
        params.append(value)
        return dialect.placeholder

    def rule_sql(rule: Rule) -> str:
        person = dialect.table("person")
        if rule.kind == "concept" and rule.category == "Person":
            concept = rule.concept_id
            sql = _persons(
                person,
                f"gender_concept_id = {bind(concept)} OR race_concept_id = {bind(concept)}"
                f" OR ethnicity_concept_id = {bind(concept)}",
            )
        elif rule.kind == "concept":
            table, column = _CONCEPT_TABLES[rule.category]
            sql = _persons(dialect.table(table), f"{column} = {bind(rule.concept_id)}")
        elif rule.kind == "age":
            conditions = []
            if rule.low is not None:
                conditions.append(f"{bind(reference_year)} - year_of_birth >= {bind(rule.low)}")
            if rule.high is not None:
                conditions.append(f"{bind(reference_year)} - year_of_birth <= {bind(rule.high)}")
            sql = _persons(person, " AND ".join(conditions))
        else:
            table, column = _CONCEPT_TABLES[rule.category]
            conditions = [f"{column} = {bind(rule.concept_id)}"]
            if rule.low is not None:
                conditions.append(f"value_as_number >= {bind(rule.low)}")
            if rule.high is not None:
                conditions.append(f"value_as_number <= {bind(rule.high)}")
            sql = _persons(dialect.table(table), " AND ".join(conditions))
        if rule.exclude:
            sql = f"{_persons(person)} EXCEPT {_persons(f'({sql}) AS excluded')}"
        return sql

    def combine(parts: Sequence[str], operator: str, alias: str) -> str:
        # Each operand is wrapped as a derived table: SQLite and PostgreSQL disagree on the precedence
        # of INTERSECT, and SQLite does not accept parenthesised compound operands.
        return f" {_OPERATORS[operator]} ".join(
            _persons(f"({part}) AS {alias}{index}") for index, part in enumerate(parts)
        )

    groups = [
        combine([rule_sql(rule) for rule in group.rules], group.operator, f"g{index}r")
        for index, group in enumerate(query.groups)
    ]
    cohort = combine(groups, query.operator, "g")
    return f"SELECT COUNT(*) FROM ({cohort}) AS cohort", params  # noqa: S608 - see _persons


# --------------------------------------------------------------------------- disclosure control
def apply_disclosure(count: int, *, threshold: int = 10, base: int = 10) -> int:
    """The count after low-number suppression, then rounding to the nearest ``base`` (halves up).

    ``count < threshold`` gives 0; otherwise ``base * floor(count / base + 1/2)``, computed exactly in
    integers as ``(2 * count + base) // (2 * base) * base``.
    """
    if count < 0:
        raise ValueError("a count cannot be negative")
    if threshold < 0 or base < 1:
        raise ValueError("the threshold must be non-negative and the rounding base positive")
    if count < threshold:
        return 0
    return (2 * count + base) // (2 * base) * base


# --------------------------------------------------------------------------- running
class _Interrupted(Exception):
    """The query was stopped because the job was cancelled or ran out of time."""

    def __init__(self, cancelled: bool) -> None:
        super().__init__("cancelled" if cancelled else "timeout")
        self.cancelled = cancelled


def count_cohort(
    dataset: Dataset,
    query: CohortQuery,
    *,
    reference_year: int,
    timeout_seconds: float,
    cancel: threading.Event | None = None,
) -> int:
    """The raw number of persons matching ``query`` in ``dataset``, over a read-only connection.

    Raises :class:`_Interrupted` on cancellation or timeout, and the driver's errors otherwise.
    """
    sql, params = compile_count_query(query, dialect_for(dataset), reference_year=reference_year)
    return _run_count(dataset, sql, params, timeout_seconds, cancel)


def _run_count(
    dataset: Dataset, sql: str, params: list[Any], timeout_seconds: float, cancel: threading.Event | None
) -> int:
    if dataset.engine == "sqlite":
        return _count_sqlite(dataset.sqlite_path, sql, params, timeout_seconds, cancel)
    return _count_postgresql(dataset.postgresql_dsn, sql, params, timeout_seconds, cancel)


def _count_sqlite(
    path: Path, sql: str, params: list[Any], timeout_seconds: float, cancel: threading.Event | None
) -> int:
    deadline = time.monotonic() + timeout_seconds
    stopped: list[bool] = []

    def progress() -> int:
        # Called by SQLite every few thousand VM instructions; a non-zero return aborts the statement.
        if cancel is not None and cancel.is_set():
            stopped.append(True)
            return 1
        if time.monotonic() > deadline:
            stopped.append(False)
            return 1
        return 0

    # mode=ro opens the file read-only (and fails if it does not exist rather than creating it).
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        connection.execute("PRAGMA query_only = ON")
        connection.set_progress_handler(progress, 1000)
        try:
            (count,) = connection.execute(sql, params).fetchone()
        except sqlite3.OperationalError:
            if stopped:
                raise _Interrupted(stopped[0]) from None
            raise
        return int(count)
    finally:
        connection.close()


def _count_postgresql(
    dsn: str | None, sql: str, params: list[Any], timeout_seconds: float, cancel: threading.Event | None
) -> int:
    with psycopg.connect(dsn or "", connect_timeout=10, autocommit=False) as connection:
        connection.read_only = True
        with _cancel_on(cancel, connection) as cancelled, connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [str(max(1, int(timeout_seconds * 1000)))]
            )
            try:
                cursor.execute(sql, params)
            except psycopg.errors.QueryCanceled:
                raise _Interrupted(cancelled.is_set()) from None
            row = cursor.fetchone()
        connection.rollback()
    return int(row[0])


@contextlib.contextmanager
def _cancel_on(cancel: threading.Event | None, connection: psycopg.Connection) -> Iterator[threading.Event]:
    """While the block runs, cancel the connection's statement as soon as ``cancel`` is set."""
    cancelled = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel is not None and cancel.wait(0.05):
                cancelled.set()
                connection.cancel_safe()
                return
            if cancel is None:
                return

    watcher = threading.Thread(target=watch, name="sql-aggregate-cancel", daemon=True)
    watcher.start()
    try:
        yield cancelled
    finally:
        done.set()
        watcher.join()


# --------------------------------------------------------------------------- executor
@dataclass(frozen=True)
class SqlAggregateOptions:
    """``[workflows.options]`` of a ``sql-aggregate`` route."""

    dataset: str
    query_parameter: str = "query"
    suppression_threshold: int = 10
    rounding_base: int = 10
    age_reference_year: int | None = None


class SqlAggregateExecutor:
    """Runs cohort-count queries; see the module docstring."""

    name: ClassVar[str] = "sql-aggregate"
    engine = Engine("Five Safes TRE agent sql-aggregate", agent.__version__)
    JSON_OUTPUT = "cohort_count.json"
    CSV_OUTPUT = "cohort_count.csv"

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None:
        self.config = config
        self.route = route
        self.options: SqlAggregateOptions = route.options
        #: The (threshold, base) applied to the running job: the TRE's policy or stricter.
        self._rules: tuple[int, int] | None = None

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> SqlAggregateOptions:
        dataset = options.string("dataset")
        if dataset not in config.datasets:
            raise ConfigError(f"{options.where} dataset: no dataset named {dataset!r} in [datasets]")
        return SqlAggregateOptions(
            dataset=dataset,
            query_parameter=options.string("query_parameter", default="query"),
            suppression_threshold=options.integer("suppression_threshold", default=10, minimum=1),
            rounding_base=options.integer("rounding_base", default=10, minimum=1),
            age_reference_year=(
                options.integer("age_reference_year", minimum=1800)
                if "age_reference_year" in options.data
                else None
            ),
        )

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult:
        started_at = datetime.now(UTC)
        clear_outputs(job.directory.outputs)
        log_path = job.directory.logs / "sql-aggregate.log"
        status, reason, outputs = ExecutionStatus.COMPLETED, None, ()
        self._rules = None
        try:
            threshold, base = self._rules = effective_rules(
                DisclosureRules.from_claim(job.policy),
                local_threshold=self.options.suppression_threshold,
                local_base=self.options.rounding_base,
                zeros_written=True,
            )
            query = self._load_query(job)
            reference_year = self.options.age_reference_year or started_at.year
            dataset = self.config.dataset(self.options.dataset)
            sql, params = compile_count_query(query, dialect_for(dataset), reference_year=reference_year)
            log_path.write_text(f"statement:\n{sql}\nparameters: {params!r}\n")
            raw = _run_count(dataset, sql, params, self.route.limits.timeout_seconds, cancel)
            safe = apply_disclosure(raw, threshold=threshold, base=base)
            del raw  # only the disclosure-controlled count exists from here on
            outputs = self._write_outputs(job, safe)
        except PolicyNotHonoured as exc:
            status, reason = ExecutionStatus.FAILED, f"refused: {exc}"
        except QueryError as exc:
            status, reason = ExecutionStatus.FAILED, f"invalid query: {exc}"
        except _Interrupted as exc:
            if exc.cancelled:
                status, reason = ExecutionStatus.CANCELLED, "cancelled"
            else:
                status = ExecutionStatus.FAILED
                reason = f"timeout: query exceeded {self.route.limits.timeout_seconds} s"
        except (sqlite3.Error, psycopg.Error) as exc:
            # The driver's message may quote schema details; the reason names only the error class.
            with log_path.open("a") as log:
                log.write(f"database error: {type(exc).__name__}: {exc}\n")
            status, reason = ExecutionStatus.FAILED, f"database error ({type(exc).__name__})"
        except OutputError as exc:
            status, reason = ExecutionStatus.FAILED, f"output refused: {exc}"
        if status is not ExecutionStatus.COMPLETED:
            clear_outputs(job.directory.outputs)
            outputs = ()
        return ExecutionResult(
            status=status,
            started_at=started_at,
            ended_at=datetime.now(UTC),
            engine=self.engine,
            outputs=outputs,
            reason=reason,
            logs=(log_path,) if log_path.exists() else (),
            details={"disclosure_control": self._disclosure_description()},
        )

    def _load_query(self, job: Job) -> CohortQuery:
        name = self.options.query_parameter
        value = job.parameters.get(name)
        if value is None:
            raise QueryError(f"the job has no {name!r} parameter holding the cohort query")
        try:
            if isinstance(value, Path):
                document = json.loads(value.read_text(encoding="utf-8"))
            elif isinstance(value, str):
                document = json.loads(value)
            else:
                raise QueryError(f"parameter {name!r} must be a JSON file or a JSON string")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise QueryError(f"parameter {name!r} is not readable JSON ({exc})") from None
        return parse_query(document)

    def _disclosure_description(self) -> dict[str, Any]:
        if self._rules is None:
            return {"refused": "the job's disclosure policy could not be honoured"}
        threshold, base = self._rules
        return {
            "low_number_suppression": {
                "threshold": threshold,
                "rule": "counts below the threshold are reported as 0",
            },
            "rounding": {"nearest": base, "rule": "round half up"},
        }

    def _write_outputs(self, job: Job, count: int) -> tuple[OutputFile, ...]:
        limit = self.route.limits.max_output_file_bytes
        document = {
            "query_type": "availability",
            "count": count,
            "disclosure_control": self._disclosure_description(),
        }
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["measure", "count", "suppression_threshold", "rounding_nearest"])
        threshold, base = self._rules
        writer.writerow(["cohort_count", count, threshold, base])
        return (
            write_output(
                job.directory.outputs,
                self.JSON_OUTPUT,
                (json.dumps(document, indent=2) + "\n").encode(),
                max_bytes=limit,
                description="Cohort count after low-number suppression and rounding",
            ),
            write_output(
                job.directory.outputs,
                self.CSV_OUTPUT,
                table.getvalue().encode(),
                max_bytes=limit,
                description="Cohort count after low-number suppression and rounding (CSV)",
            ),
        )
