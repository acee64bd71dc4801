"""Demonstration workflows for the reference agent, run on synthetic data.

* ``age_sex_table/``: a Workflow RO-Crate holding a CWL workflow (one CommandLineTool using the host's
  ``python3``, no containers) that reads the TRE's SQLite dataset and returns persons by age band and
  sex as CSV. Run it with the ``cwl`` executor; the TRE gives the dataset as the ``dataset`` input.
* ``cohort_query.json``: a cohort-count query for the ``sql-aggregate`` executor: type 2 diabetes
  treated with metformin and no asthma, or aged 40 or over with an HbA1c of at least 6.5 %.

The portal stores the sha256 of each approved Workflow RO-Crate zip, so :func:`pack_workflow_crate`
writes reproducible archives: the same files always give the same sha256.
Command line: ``python -m agent.demo_workflows pack --out age-sex-table.zip``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.archive import write_zip

__all__ = ["AGE_SEX_TABLE", "COHORT_QUERY", "PackedWorkflow", "pack_workflow_crate"]

DIRECTORY = Path(__file__).resolve().parent
AGE_SEX_TABLE = DIRECTORY / "age_sex_table"
COHORT_QUERY = DIRECTORY / "cohort_query.json"
# Never part of a workflow crate: byte-code caches and editor or VCS droppings.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


@dataclass(frozen=True)
class PackedWorkflow:
    """A packed Workflow RO-Crate zip."""

    path: Path
    sha256: str
    size: int
    main_entity: str


def pack_workflow_crate(source: Path, dest: Path) -> PackedWorkflow:
    """Zip the Workflow RO-Crate in ``source`` (metadata file at the zip's root) into ``dest``.

    Raises :class:`ValueError` if ``source`` has no ``ro-crate-metadata.json`` naming a ``mainEntity``
    that exists in the folder.
    """
    source = Path(source)
    try:
        metadata = json.loads((source / "ro-crate-metadata.json").read_text(encoding="utf-8"))
        entities = {entity["@id"]: entity for entity in metadata["@graph"]}
        main_entity = entities["./"]["mainEntity"]["@id"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{source} is not a Workflow RO-Crate with a mainEntity ({exc})") from None
    if not (source / main_entity).is_file():
        raise ValueError(f"{source}: mainEntity {main_entity!r} is missing")
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / "crate"
        shutil.copytree(source, staged, ignore=_IGNORED)
        sha256 = write_zip(staged, Path(dest))
    return PackedWorkflow(Path(dest), sha256, Path(dest).stat().st_size, main_entity)
