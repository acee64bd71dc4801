# A workflow's script, run by the workflow with the host's python3; not a module of the agent.
# ruff: noqa: INP001
"""Count the persons of an OMOP-like SQLite dataset by ten-year age band and sex; write a CSV table.

Every band from 0-9 to 90+ appears for each of female, male and other, zeros included, so the table's
shape never depends on the data.
"""

import argparse
import csv
import sqlite3
from collections import Counter
from pathlib import Path

SEXES = {8532: "female", 8507: "male"}
BANDS = [f"{low}-{low + 9}" for low in range(0, 90, 10)] + ["90+"]


def age_band(age: int) -> str:
    return BANDS[min(max(age, 0) // 10, len(BANDS) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--reference-year", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    connection = sqlite3.connect(f"{args.dataset.resolve().as_uri()}?mode=ro", uri=True)
    try:
        counts = Counter(
            (age_band(args.reference_year - year_of_birth), SEXES.get(gender, "other"))
            for year_of_birth, gender in connection.execute(
                "SELECT year_of_birth, gender_concept_id FROM person"
            )
        )
    finally:
        connection.close()

    with args.out.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["age_band", "sex", "persons"])
        for band in BANDS:
            for sex in ("female", "male", "other"):
                writer.writerow([band, sex, counts[(band, sex)]])


if __name__ == "__main__":
    main()
