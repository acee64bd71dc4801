"""The result crate: the request's Five Safes RO-Crate, updated with the run, as a zipped BagIt bag.

:func:`update_metadata` edits the request's JSON-LD (a copy; never via ro-crate-py):

* the requested run's ``CreateAction`` gets ``actionStatus`` (the plain strings
  ``http://schema.org/CompletedActionStatus`` or ``...FailedActionStatus``), RFC 3339 ``startTime`` and
  ``endTime``, and, when completed, ``result`` pointing at one ``File`` entity per output with
  ``contentSize``, ``sha256`` and ``encodingFormat``; when not completed, an ``error`` stating the
  agent's reason;
* a ``DownloadAction`` records the retrieval of the approved workflow (phase "Workflow retrieval");
* an ``OrganizeAction`` records which engine ran the requested run (as in Workflow Run Crate); no
  second ``CreateAction`` is added, because every ``CreateAction`` is checked as the requested run;
* the agent is a ``SoftwareApplication`` whose ``provider`` is the TRE ``Organization``.

:func:`write_result_crate` then writes a BagIt bag whose payload is exactly ``ro-crate-metadata.json``
plus ``outputs/<declared outputs>`` and, for CWL runs, ``provenance/`` (a Provenance Run Crate stripped
by :mod:`agent.provenance`): no input data, no logs, no host paths and nothing from the agent's
configuration. Each output is copied from the job's ``outputs/`` directory and checked against
the size and sha256 the executor recorded. The bag has sha512 manifests, keeps the request's
``External-Identifier``, and is zipped under one top-level directory.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import bagit

import agent
from agent.archive import sha256_file, write_zip
from agent.config import TreIdentity
from agent.crate import entity_index, ids, requested_run, root_entity
from agent.executors.base import ExecutionResult, ExecutionStatus, OutputFile, check_output_path

__all__ = [
    "ResultCrate",
    "ResultCrateError",
    "WorkflowRetrieval",
    "external_identifier_of",
    "rfc3339",
    "update_metadata",
    "write_result_crate",
]

_EXTERNAL_IDENTIFIER_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_COMPLETED = "http://schema.org/CompletedActionStatus"
_FAILED = "http://schema.org/FailedActionStatus"


class ResultCrateError(ValueError):
    """The result crate cannot be written as asked (bad identifier, outputs changed since collection)."""


@dataclass(frozen=True)
class WorkflowRetrieval:
    """How the agent obtained the approved workflow crate (recorded as the DownloadAction).

    ``source`` is what was downloaded; by default, the ``distribution`` of the crate's ``mainEntity``.
    """

    started_at: datetime
    ended_at: datetime
    sha256: str
    succeeded: bool = True
    source: str | None = None


@dataclass(frozen=True)
class ResultCrate:
    """A written result crate zip."""

    path: Path
    sha256: str
    size: int
    external_identifier: str


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC, to the second, as RFC 3339 (``2025-01-01T12:00:00+00:00``)."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def update_metadata(
    request: Mapping[str, Any],
    result: ExecutionResult,
    *,
    tre: TreIdentity,
    retrieval: WorkflowRetrieval | None = None,
) -> dict[str, Any]:
    """A copy of the request crate's metadata describing the run (see the module docstring)."""
    metadata = copy.deepcopy(dict(request))
    root = root_entity(metadata)
    run = requested_run(metadata)
    graph: list[dict[str, Any]] = metadata["@graph"]
    mentions = ids(root.get("mentions"))

    tre_entity = {"@id": tre.url, "@type": "Organization", "name": tre.name}
    agent_id = f"{tre.url.split('#')[0]}#five-safes-agent"
    agent_entity = {
        "@id": agent_id,
        "@type": "SoftwareApplication",
        "name": f"Five Safes TRE agent at {tre.name}",
        "softwareVersion": agent.__version__,
        "provider": {"@id": tre.url},
    }
    engine_id = f"#engine-{_slug(result.engine.name)}-{_slug(result.engine.version)}"
    engine_entity = {
        "@id": engine_id,
        "@type": "SoftwareApplication",
        "name": result.engine.name,
        "softwareVersion": result.engine.version,
    }
    if result.engine.url:
        engine_entity["url"] = result.engine.url
    for entity in (tre_entity, agent_entity, engine_entity):
        _merge(graph, entity)

    run["actionStatus"] = result.status.action_status
    run["startTime"] = rfc3339(result.started_at)
    run["endTime"] = rfc3339(result.ended_at)
    run.pop("result", None)
    run.pop("error", None)
    if result.status is ExecutionStatus.COMPLETED:
        output_ids = []
        for output in result.outputs:
            entity = _output_entity(output)
            _replace(graph, entity)
            output_ids.append(entity["@id"])
        run["result"] = [{"@id": identifier} for identifier in output_ids]
        has_part = ids(root.get("hasPart"))
        root["hasPart"] = [
            {"@id": identifier} for identifier in has_part + [i for i in output_ids if i not in has_part]
        ]
    else:
        error_id = f"#execution-error-{uuid.uuid4()}"
        graph.append(
            {
                "@id": error_id,
                "@type": "PropertyValue",
                "name": "Reason the run did not complete",
                "value": result.reason,
            }
        )
        run["error"] = {"@id": error_id}

    if retrieval is not None:
        index = entity_index(metadata)
        main_entity = index.get(ids(root.get("mainEntity"))[0], {})
        source = (
            retrieval.source
            or next(iter(ids(main_entity.get("distribution"))), None)
            or main_entity.get("@id")
        )
        download_id = f"#download-{uuid.uuid4()}"
        outcome = "verified" if retrieval.succeeded else "failed"
        graph.append(
            {
                "@id": download_id,
                "@type": "DownloadAction",
                "name": f"Retrieval of the approved workflow RO-Crate by the TRE agent: {outcome}",
                "description": f"sha256 {retrieval.sha256}",
                "object": {"@id": source},
                "agent": {"@id": agent_id},
                "startTime": rfc3339(retrieval.started_at),
                "endTime": rfc3339(retrieval.ended_at),
                "actionStatus": _COMPLETED if retrieval.succeeded else _FAILED,
            }
        )
        mentions.append(download_id)

    execution_id = f"#execution-{uuid.uuid4()}"
    graph.append(
        {
            "@id": execution_id,
            "@type": "OrganizeAction",
            "name": f"Execution of the requested run by {result.engine.name} at {tre.name}",
            "agent": {"@id": agent_id},
            "instrument": {"@id": engine_id},
            "result": {"@id": run["@id"]},
            "startTime": rfc3339(result.started_at),
            "endTime": rfc3339(result.ended_at),
            "actionStatus": result.status.action_status,
        }
    )
    mentions.append(execution_id)
    root["mentions"] = [{"@id": identifier} for identifier in mentions]
    return metadata


def write_result_crate(
    request: Mapping[str, Any],
    result: ExecutionResult,
    *,
    outputs_dir: Path,
    external_identifier: str,
    tre: TreIdentity,
    dest: Path,
    retrieval: WorkflowRetrieval | None = None,
    provenance: Path | None = None,
) -> ResultCrate:
    """Write the result crate zip to ``dest`` (see the module docstring) and describe it.

    ``outputs_dir`` is the job's ``outputs/`` directory; only the files listed in ``result.outputs`` are
    taken from it, each verified against its recorded size and sha256.
    """
    if not _EXTERNAL_IDENTIFIER_RE.match(external_identifier):
        raise ResultCrateError("External-Identifier must be printable ASCII without spaces")
    metadata = update_metadata(request, result, tre=tre, retrieval=retrieval)
    completed = result.status is ExecutionStatus.COMPLETED
    if completed and provenance is not None and (provenance / "ro-crate-metadata.json").is_file():
        _add_provenance_entity(metadata)
    else:
        provenance = None
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    bag_name = "result-" + (
        external_identifier.removeprefix("urn:uuid:") if _is_urn_uuid(external_identifier) else "crate"
    )
    with tempfile.TemporaryDirectory(prefix=".result-", dir=dest.parent) as scratch:
        bag_dir = Path(scratch) / bag_name
        bag_dir.mkdir()
        (bag_dir / "ro-crate-metadata.json").write_text(
            json.dumps(metadata, indent=2, ensure_ascii=False) + "\n"
        )
        for output in result.outputs if completed else ():
            _copy_verified(outputs_dir, output, bag_dir / "outputs")
        if provenance is not None:
            shutil.copytree(provenance, bag_dir / "provenance", symlinks=False)
        bag = bagit.make_bag(
            str(bag_dir),
            bag_info={
                "External-Identifier": external_identifier,
                "Bag-Software-Agent": f"five-safes-agent {agent.__version__}",
            },
            checksums=["sha512"],
        )
        # bagit-python writes BagIt 0.97; Five Safes crates must declare BagIt 1.0 (5s-crate, BagIt
        # expectations), so declare it and recompute the tag manifest over the new bagit.txt.
        (bag_dir / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        bag = bagit.Bag(str(bag_dir))
        bag.save()
        bag.validate()
        sha256 = write_zip(Path(scratch), dest)
    return ResultCrate(
        path=dest, sha256=sha256, size=dest.stat().st_size, external_identifier=external_identifier
    )


PROVENANCE_PROFILE = "https://w3id.org/ro/wfrun/provenance/0.5"
_PROVENANCE_FILES = (
    ("ro-crate-metadata.json", "application/ld+json"),
    ("packed.cwl", "application/x-yaml"),
    ("README.md", "text/markdown"),
)


def _add_provenance_entity(metadata: dict[str, Any]) -> None:
    """Describe ``provenance/``, the nested Provenance Run Crate, and its files.

    The files are described as plain files: an ``about`` on the nested metadata file would make the
    validators take ``provenance/`` for this crate's root.
    """
    graph: list[dict[str, Any]] = metadata["@graph"]
    root = root_entity(metadata)
    _replace(
        graph,
        {
            "@id": "provenance/",
            "@type": "Dataset",
            "name": "Provenance of the run",
            "description": "What ran, with which engine and container images, in which order, as a Provenance "
            "Run Crate. Inputs and outputs are named but not included.",
            "conformsTo": {"@id": PROVENANCE_PROFILE},
            "hasPart": [{"@id": f"provenance/{name}"} for name, _ in _PROVENANCE_FILES],
        },
    )
    for name, media_type in _PROVENANCE_FILES:
        _replace(graph, {"@id": f"provenance/{name}", "@type": "File", "encodingFormat": media_type})
    has_part = ids(root.get("hasPart"))
    if "provenance/" not in has_part:
        root["hasPart"] = [{"@id": identifier} for identifier in [*has_part, "provenance/"]]


def _copy_verified(outputs_dir: Path, output: OutputFile, target_dir: Path) -> None:
    relative = check_output_path(output.path)
    source = outputs_dir.joinpath(*relative.parts)
    target = target_dir.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink() or not source.is_file():
        raise ResultCrateError(f"output {output.path!r} is no longer a regular file")
    shutil.copyfile(source, target)
    if target.stat().st_size != output.size or sha256_file(target) != output.sha256:
        raise ResultCrateError(f"output {output.path!r} changed after it was collected")


def _output_entity(output: OutputFile) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "@id": f"outputs/{output.path}",
        "@type": "File",
        "name": PurePosixPath(output.path).name,
        "encodingFormat": output.media_type,
        "contentSize": str(output.size),
        "sha256": output.sha256,
    }
    if output.description:
        entity["description"] = output.description
    return entity


def _merge(graph: list[dict[str, Any]], entity: dict[str, Any]) -> None:
    """Add ``entity``, or fill in the keys an entity with the same ``@id`` lacks (never overwriting)."""
    for existing in graph:
        if existing.get("@id") == entity["@id"]:
            for key, value in entity.items():
                existing.setdefault(key, value)
            return
    graph.append(entity)


def _replace(graph: list[dict[str, Any]], entity: dict[str, Any]) -> None:
    graph[:] = [existing for existing in graph if existing.get("@id") != entity["@id"]]
    graph.append(entity)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "x"


def _is_urn_uuid(identifier: str) -> bool:
    try:
        uuid.UUID(identifier.removeprefix("urn:uuid:"))
    except ValueError:
        return False
    return identifier.startswith("urn:uuid:")


def external_identifier_of(bag_dir: Path) -> str:
    """The ``External-Identifier`` in a received bag's ``bag-info.txt`` (for the request crate)."""
    info = bagit.Bag(str(bag_dir)).info.get("External-Identifier")
    if isinstance(info, list):
        raise ResultCrateError("bag-info.txt has more than one External-Identifier")
    if not info:
        raise ResultCrateError("bag-info.txt has no External-Identifier")
    return info
