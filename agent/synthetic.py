"""Synthetic person-level datasets in an OMOP-like shape, for demonstrations and tests.

Nothing here describes a real person. :func:`generate` draws, from a seeded random generator, persons
with sex, year of birth, race and ethnicity, and for each some conditions, drug exposures, measurements
and observations whose probabilities depend on age and on each other (diabetes makes metformin and a
high HbA1c likely, and so on), so that cohort queries give plausible, non-trivial counts. The same seed
and size always give the same rows; different TREs use different seeds and sizes.

The tables are a subset of OMOP CDM 5.4 (``person``, ``observation_period``, ``condition_occurrence``,
``drug_exposure``, ``measurement``, ``observation``, ``procedure_occurrence`` and a small ``concept``
table naming the concepts used). Concept ids are those of the OMOP standard vocabularies for the
demographic, condition, drug and measurement concepts listed in :data:`CONCEPTS`.

Command line::

    python -m agent.synthetic --out tre-north.sqlite --persons 2000 --seed 1
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["CONCEPTS", "SyntheticDataset", "generate", "main", "write_postgresql", "write_sqlite"]

MALE, FEMALE = 8507, 8532
WHITE, BLACK, ASIAN = 8527, 8516, 8515
HISPANIC, NOT_HISPANIC = 38003563, 38003564
TYPE_2_DIABETES, HYPERTENSION, ASTHMA = 201826, 316866, 317009
MYOCARDIAL_INFARCTION, COPD, HYPERLIPIDEMIA, DEPRESSION = 4329847, 255573, 432867, 440383
METFORMIN, LISINOPRIL, ATORVASTATIN, ALBUTEROL, SERTRALINE, ASPIRIN = (
    1503297,
    1308216,
    1545958,
    1154343,
    739138,
    1112807,
)
HBA1C, BMI, SYSTOLIC_BP = 3004410, 3038553, 3004249
SMOKER = 4298794
EHR = 32817  # type concept: the record came from an electronic health record

#: concept id -> (name, domain)
CONCEPTS: dict[int, tuple[str, str]] = {
    MALE: ("MALE", "Gender"),
    FEMALE: ("FEMALE", "Gender"),
    WHITE: ("White", "Race"),
    BLACK: ("Black or African American", "Race"),
    ASIAN: ("Asian", "Race"),
    HISPANIC: ("Hispanic or Latino", "Ethnicity"),
    NOT_HISPANIC: ("Not Hispanic or Latino", "Ethnicity"),
    TYPE_2_DIABETES: ("Type 2 diabetes mellitus", "Condition"),
    HYPERTENSION: ("Hypertensive disorder", "Condition"),
    ASTHMA: ("Asthma", "Condition"),
    MYOCARDIAL_INFARCTION: ("Myocardial infarction", "Condition"),
    COPD: ("Chronic obstructive lung disease", "Condition"),
    HYPERLIPIDEMIA: ("Hyperlipidemia", "Condition"),
    DEPRESSION: ("Depressive disorder", "Condition"),
    METFORMIN: ("metformin", "Drug"),
    LISINOPRIL: ("lisinopril", "Drug"),
    ATORVASTATIN: ("atorvastatin", "Drug"),
    ALBUTEROL: ("albuterol", "Drug"),
    SERTRALINE: ("sertraline", "Drug"),
    ASPIRIN: ("aspirin", "Drug"),
    HBA1C: ("Hemoglobin A1c/Hemoglobin.total in Blood", "Measurement"),
    BMI: ("Body mass index (BMI) [Ratio]", "Measurement"),
    SYSTOLIC_BP: ("Systolic blood pressure", "Measurement"),
    SMOKER: ("Smoker", "Observation"),
    EHR: ("EHR", "Type Concept"),
}

# Portable DDL: the same statements create the tables in SQLite and in PostgreSQL.
TABLES: dict[str, tuple[str, ...]] = {
    "concept": (
        "concept_id INTEGER PRIMARY KEY",
        "concept_name VARCHAR(255) NOT NULL",
        "domain_id VARCHAR(20) NOT NULL",
    ),
    "person": (
        "person_id INTEGER PRIMARY KEY",
        "gender_concept_id INTEGER NOT NULL",
        "year_of_birth INTEGER NOT NULL",
        "month_of_birth INTEGER",
        "day_of_birth INTEGER",
        "race_concept_id INTEGER NOT NULL",
        "ethnicity_concept_id INTEGER NOT NULL",
    ),
    "observation_period": (
        "observation_period_id INTEGER PRIMARY KEY",
        "person_id INTEGER NOT NULL",
        "observation_period_start_date DATE NOT NULL",
        "observation_period_end_date DATE NOT NULL",
        "period_type_concept_id INTEGER NOT NULL",
    ),
    "condition_occurrence": (
        "condition_occurrence_id INTEGER PRIMARY KEY",
        "person_id INTEGER NOT NULL",
        "condition_concept_id INTEGER NOT NULL",
        "condition_start_date DATE NOT NULL",
        "condition_type_concept_id INTEGER NOT NULL",
    ),
    "drug_exposure": (
        "drug_exposure_id INTEGER PRIMARY KEY",
        "person_id INTEGER NOT NULL",
        "drug_concept_id INTEGER NOT NULL",
        "drug_exposure_start_date DATE NOT NULL",
        "drug_type_concept_id INTEGER NOT NULL",
    ),
    "measurement": (
        "measurement_id INTEGER PRIMARY KEY",
        "person_id INTEGER NOT NULL",
        "measurement_concept_id INTEGER NOT NULL",
        "measurement_date DATE NOT NULL",
        "value_as_number DOUBLE PRECISION",
        "measurement_type_concept_id INTEGER NOT NULL",
    ),
    "observation": (
        "observation_id INTEGER PRIMARY KEY",
        "person_id INTEGER NOT NULL",
        "observation_concept_id INTEGER NOT NULL",
        "observation_date DATE NOT NULL",
        "value_as_number DOUBLE PRECISION",
        "observation_type_concept_id INTEGER NOT NULL",
    ),
    "procedure_occurrence": (
        "procedure_occurrence_id INTEGER PRIMARY KEY",
        "person_id INTEGER NOT NULL",
        "procedure_concept_id INTEGER NOT NULL",
        "procedure_date DATE NOT NULL",
        "procedure_type_concept_id INTEGER NOT NULL",
    ),
}
# (table, column) pairs worth an index: every cohort rule filters on one of these.
INDEXES = (
    ("condition_occurrence", "condition_concept_id"),
    ("drug_exposure", "drug_concept_id"),
    ("measurement", "measurement_concept_id"),
    ("observation", "observation_concept_id"),
    ("procedure_occurrence", "procedure_concept_id"),
)


@dataclass
class SyntheticDataset:
    """Rows per table, in :data:`TABLES` column order; dates are :class:`datetime.date`."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {name: [] for name in TABLES})

    def add(self, table: str, *values: Any) -> None:
        """Append a row whose first column, the id, is the next integer for ``table``."""
        self.rows[table].append((len(self.rows[table]) + 1, *values))


def generate(persons: int, seed: int, *, release_date: date = date(2025, 1, 1)) -> SyntheticDataset:
    """``persons`` synthetic persons and their records, up to ``release_date``, from ``seed``."""
    if persons < 1:
        raise ValueError("persons must be at least 1")
    rng = random.Random(seed)
    dataset = SyntheticDataset()
    for concept_id, (name, domain) in sorted(CONCEPTS.items()):
        dataset.rows["concept"].append((concept_id, name, domain))

    def day_between(start: date, end: date) -> date:
        return start + timedelta(days=rng.randrange(max(1, (end - start).days)))

    for person_id in range(1, persons + 1):
        sex = MALE if rng.random() < 0.49 else FEMALE
        year_of_birth = rng.randint(release_date.year - 95, release_date.year - 1)
        birth = date(year_of_birth, rng.randint(1, 12), rng.randint(1, 28))
        age = release_date.year - year_of_birth
        race = rng.choices((WHITE, BLACK, ASIAN), weights=(0.8, 0.08, 0.12))[0]
        ethnicity = HISPANIC if rng.random() < 0.06 else NOT_HISPANIC
        dataset.rows["person"].append(
            (person_id, sex, year_of_birth, birth.month, birth.day, race, ethnicity)
        )
        adult = date(min(year_of_birth + 18, release_date.year - 1), birth.month, birth.day)
        observed_from = max(adult, date(1995, 1, 1)) if age > 18 else birth
        dataset.add("observation_period", person_id, observed_from, release_date, EHR)

        def over(threshold: int, slope: float, age: int = age) -> float:
            return slope * max(0, age - threshold)

        risks = {
            TYPE_2_DIABETES: min(0.35, 0.01 + over(30, 0.005)),
            HYPERTENSION: min(0.6, 0.02 + over(30, 0.008)),
            ASTHMA: 0.09,
            MYOCARDIAL_INFARCTION: min(0.2, over(45, 0.002) * (1.6 if sex == MALE else 1.0)),
            COPD: min(0.2, over(40, 0.002)),
            HYPERLIPIDEMIA: min(0.5, 0.01 + over(35, 0.006)),
            DEPRESSION: 0.11 if age >= 12 else 0.01,
        }
        conditions = {concept for concept, risk in risks.items() if rng.random() < risk}
        for concept in sorted(conditions):
            dataset.add(
                "condition_occurrence", person_id, concept, day_between(observed_from, release_date), EHR
            )

        treatments = (
            (METFORMIN, TYPE_2_DIABETES in conditions, 0.8),
            (LISINOPRIL, HYPERTENSION in conditions, 0.6),
            (ATORVASTATIN, bool(conditions & {HYPERLIPIDEMIA, MYOCARDIAL_INFARCTION}), 0.7),
            (ALBUTEROL, bool(conditions & {ASTHMA, COPD}), 0.7),
            (SERTRALINE, DEPRESSION in conditions, 0.5),
            (ASPIRIN, MYOCARDIAL_INFARCTION in conditions, 0.8),
        )
        for drug, indicated, probability in treatments:
            if indicated and rng.random() < probability:
                for _ in range(rng.randint(1, 3)):
                    dataset.add(
                        "drug_exposure", person_id, drug, day_between(observed_from, release_date), EHR
                    )

        if age >= 2 and rng.random() < 0.7:
            bmi = rng.gauss(27 + (3 if TYPE_2_DIABETES in conditions else 0), 4.5)
            dataset.add(
                "measurement",
                person_id,
                BMI,
                day_between(observed_from, release_date),
                round(max(14.0, bmi), 1),
                EHR,
            )
        if TYPE_2_DIABETES in conditions or (age >= 18 and rng.random() < 0.3):
            hba1c = rng.gauss(7.6, 1.2) if TYPE_2_DIABETES in conditions else rng.gauss(5.4, 0.35)
            dataset.add(
                "measurement",
                person_id,
                HBA1C,
                day_between(observed_from, release_date),
                round(max(4.0, hba1c), 1),
                EHR,
            )
        if age >= 18 and rng.random() < 0.6:
            systolic = rng.gauss(115 + 0.3 * age + (15 if HYPERTENSION in conditions else 0), 12)
            dataset.add(
                "measurement",
                person_id,
                SYSTOLIC_BP,
                day_between(observed_from, release_date),
                round(systolic),
                EHR,
            )
        if age >= 16 and rng.random() < 0.17:
            dataset.add("observation", person_id, SMOKER, day_between(observed_from, release_date), None, EHR)
    return dataset


def write_sqlite(dataset: SyntheticDataset, path: Path) -> Path:
    """Write ``dataset`` to a new SQLite file at ``path`` (which must not exist) and return the path."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    connection = sqlite3.connect(path)
    try:
        with connection:
            for table, columns in TABLES.items():
                connection.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
                placeholders = ", ".join("?" * len(columns))
                connection.executemany(
                    f"INSERT INTO {table} VALUES ({placeholders})",  # noqa: S608 - names from TABLES
                    ([_iso(value) for value in row] for row in dataset.rows[table]),
                )
            for table, column in INDEXES:
                connection.execute(f"CREATE INDEX idx_{table}_{column} ON {table} ({column})")
                connection.execute(f"CREATE INDEX idx_{table}_person ON {table} (person_id)")
    finally:
        connection.close()
    return path


def write_postgresql(dataset: SyntheticDataset, connection: psycopg.Connection, schema: str) -> None:
    """Create ``schema`` and the tables in it, and load ``dataset``; the caller commits."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table, columns in TABLES.items():
            name = sql.Identifier(schema, table)
            cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(name, sql.SQL(", ".join(columns))))
            with cursor.copy(sql.SQL("COPY {} FROM STDIN").format(name)) as copy:
                for row in dataset.rows[table]:
                    copy.write_row(row)
        for table, column in INDEXES:
            cursor.execute(
                sql.SQL("CREATE INDEX ON {} ({})").format(
                    sql.Identifier(schema, table), sql.Identifier(column)
                )
            )


def _iso(value: Any) -> Any:
    # SQLite has no date type; OMOP-on-SQLite conventionally stores ISO 8601 text.
    return value.isoformat() if isinstance(value, date) else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.synthetic",
        description="Write a synthetic OMOP-like dataset to a new SQLite file.",
    )
    parser.add_argument("--out", type=Path, required=True, help="SQLite file to create")
    parser.add_argument("--persons", type=int, required=True, help="number of persons")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same seed, same data)")
    parser.add_argument(
        "--release-date", type=date.fromisoformat, default=date(2025, 1, 1), help="last date of the records"
    )
    args = parser.parse_args(argv)
    if args.persons < 1:
        parser.error("--persons must be at least 1")
    if args.out.exists():
        parser.error(f"{args.out} already exists")
    dataset = generate(args.persons, args.seed, release_date=args.release_date)
    write_sqlite(dataset, args.out)
    counts = ", ".join(f"{table} {len(rows)}" for table, rows in dataset.rows.items())
    print(f"wrote {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
