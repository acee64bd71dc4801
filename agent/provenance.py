"""The run's provenance as it may leave the TRE: a Provenance Run Crate stripped of anything disclosive.

cwltool's CWLProv research object, converted by runcrate into a Workflow Run Crate, stays in the job's
``provenance/`` directory: it holds copies of every input (the TRE's dataset included) and output, the
input object with host paths, and timestamps of every step. :func:`release_provenance` makes from it the
crate that travels inside the results crate (``provenance/``):

* only the workflow itself (``packed.cwl``: the approved, already public workflow) is copied; no data
  file, no input object document (``primary-job.json``), no log;
* every input and output ``File`` becomes an entity with a ``#`` identifier that keeps its name, its
  formal parameter and, for outputs, a pointer to where the results crate carries it; sizes and
  checksums are dropped, so nothing identifies the TRE's data or tells of an output that is withheld;
* the crate declares the Provenance Run Crate 0.5 profile (and the Process and Workflow Run Crate
  profiles it builds on), on the RO-Crate 1.1 context the community validator checks it with;
* a crate that would still mention a host path, the job's directory or a credential is not released.
"""

from __future__ import annotations

import json
import mimetypes
import re
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.config import TreIdentity

__all__ = ["PROFILES", "ProvenanceError", "release_provenance"]

PROFILES = (
    "https://w3id.org/ro/wfrun/process/0.5",
    "https://w3id.org/ro/wfrun/workflow/0.5",
    "https://w3id.org/ro/wfrun/provenance/0.5",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
)
_PROFILE_NAMES = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0"),
}
_CONTEXT = ["https://w3id.org/ro/crate/1.1/context", "https://w3id.org/ro/terms/workflow-run/context"]
_LICENSE = "https://spdx.org/licenses/CC0-1.0"
_SHA1_ID = re.compile(r"^[0-9a-f]{40}$")
# Absolute host paths as JSON strings show them (a leading slash after a quote or whitespace).
_HOST_PATH = re.compile(r"(?<![\w:/])/(?:tmp|var|srv|home|root|etc|opt|usr|run|mnt|data|work)\b")


class ProvenanceError(ValueError):
    """The run crate cannot be released safely; the message says why (never its content)."""


def release_provenance(
    run_crate: Path,
    dest: Path,
    *,
    outputs: Iterable[str],
    tre: TreIdentity,
    workflow_version: str,
    workflow_url: str,
    forbidden: Iterable[str] = (),
) -> Path:
    """Write the releasable Provenance Run Crate for ``run_crate`` into ``dest``; return ``dest``.

    ``outputs`` are the paths of the outputs the results crate carries (under its ``outputs/``);
    ``forbidden`` are strings (the job's directory, credentials) that must not appear anywhere.
    ``workflow_url`` and ``workflow_version`` name the approved workflow as the portal does.
    """
    try:
        metadata = json.loads((run_crate / "ro-crate-metadata.json").read_text(encoding="utf-8"))
        graph: list[dict[str, Any]] = metadata["@graph"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ProvenanceError("the run crate has no readable metadata") from None
    index = {entity["@id"]: entity for entity in graph}
    root = index["./"]
    workflow_id = root["mainEntity"]["@id"]
    released_outputs = {Path(path).name: path for path in outputs}
    kept: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    for entity in graph:
        identifier = entity["@id"]
        if identifier in ("primary-job.json",) or identifier in _PROFILE_NAMES:
            continue
        if identifier.startswith("https://w3id.org/ro/wfrun/") or identifier.startswith(
            "https://w3id.org/workflowhub/workflow-ro-crate/"
        ):
            continue
        if _is_data_copy(entity, identifier):
            renamed[identifier] = _describe_data(entity, released_outputs, kept)
            continue
        kept.append(entity)
    for entity in kept:
        _rename_references(entity, renamed)
    root = next(entity for entity in kept if entity["@id"] == "./")
    root["conformsTo"] = [{"@id": profile} for profile in PROFILES]
    root["hasPart"] = [{"@id": workflow_id}]
    root["license"] = {"@id": _LICENSE}
    root["name"] = f"Provenance of the run: {root.get('name', 'workflow run').removeprefix('run of ')}"
    root["description"] = (
        "What ran, with which engine and container images, in which order. Inputs and outputs are named "
        "but not included; the data stay inside the TRE."
    )
    descriptor = next(entity for entity in kept if entity["@id"] == "ro-crate-metadata.json")
    descriptor["conformsTo"] = {"@id": "https://w3id.org/ro/crate/1.1"}
    kept += [
        {"@id": profile, "@type": "CreativeWork", "name": name, "version": version}
        for profile, (name, version) in _PROFILE_NAMES.items()
    ]
    kept.append({"@id": _LICENSE, "@type": "CreativeWork", "name": "CC0 1.0 Universal"})
    _describe_run(
        kept, tre=tre, workflow_id=workflow_id, workflow_version=workflow_version, workflow_url=workflow_url
    )
    kept = [_single_values(entity) for entity in kept]
    released = {"@context": _CONTEXT, "@graph": kept}
    text = json.dumps(released, indent=2, ensure_ascii=False) + "\n"
    for secret in forbidden:
        if secret and secret in text:
            raise ProvenanceError("the run crate mentions the job's directory or a credential")
    if _HOST_PATH.search(text):
        raise ProvenanceError("the run crate mentions a host path")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    source = (run_crate / workflow_id).resolve()
    if not source.is_relative_to(run_crate.resolve()) or not source.is_file():
        raise ProvenanceError("the run crate does not hold its workflow")
    workflow_text = source.read_text(encoding="utf-8")
    for secret in forbidden:
        if secret and secret in workflow_text:
            raise ProvenanceError("the packed workflow mentions the job's directory or a credential")
    (dest / workflow_id).write_text(workflow_text, encoding="utf-8")
    (dest / "ro-crate-metadata.json").write_text(text, encoding="utf-8")
    (dest / "README.md").write_text(_README, encoding="utf-8")
    return dest


_README = """# Provenance of this run

This folder records how the analysis ran inside the TRE: the workflow (`packed.cwl`), the workflow engine
and its version, each step with its start and end time, and the container images the steps ran in. The
inputs and outputs are named but not copied here: the TRE's data never leave it, and the outputs travel
only in the results crate's `outputs/` folder once output checkers have approved them.

`ro-crate-metadata.json` describes all this as a Provenance Run Crate
(https://w3id.org/ro/wfrun/provenance/0.5).
"""
_ACTION_TYPES = {"CreateAction", "ControlAction", "OrganizeAction"}


def _types(entity: dict[str, Any]) -> list[str]:
    types = entity.get("@type", [])
    return types if isinstance(types, list) else [types]


def _aware(moment: str) -> str:
    """cwltool writes local times without an offset; give them one (RFC 3339)."""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    # The profile's pattern wants milliseconds and a "+hh:mm" offset: write UTC.
    return (
        (parsed if parsed.tzinfo else parsed.astimezone()).astimezone(UTC).isoformat(timespec="milliseconds")
    )


def _describe_run(
    graph: list[dict[str, Any]],
    *,
    tre: TreIdentity,
    workflow_id: str,
    workflow_version: str,
    workflow_url: str,
) -> None:
    """Fill in what the community profiles recommend and runcrate leaves out."""
    index = {entity["@id"]: entity for entity in graph}
    root = index["./"]
    tre_entity = {"@id": tre.url, "@type": "Organization", "name": tre.name, "url": tre.url}
    graph.append(tre_entity)
    root["author"] = root["publisher"] = {"@id": tre.url}
    root["hasPart"] = [{"@id": workflow_id}, {"@id": "README.md"}]
    graph.append(
        {
            "@id": "README.md",
            "@type": "File",
            "name": "What this provenance shows, in plain language",
            "about": {"@id": "./"},
            "encodingFormat": "text/markdown",
        }
    )
    index["ro-crate-metadata.json"]["conformsTo"] = [
        {"@id": "https://w3id.org/ro/crate/1.1"},
        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"},
    ]
    workflow = index[workflow_id]
    workflow["version"] = workflow_version
    workflow["url"] = {"@id": workflow_url}
    workflow["encodingFormat"] = "application/x-yaml"
    workflow["conformsTo"] = {"@id": "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"}
    renamed: dict[str, str] = {}
    ends = []
    mentions = []
    for entity in graph:
        types = _types(entity)
        if "SoftwareApplication" in types and entity["@id"].startswith("#"):
            name = str(entity.get("name", ""))
            engine, _, version = name.partition(" ")
            if engine == "cwltool":
                renamed[entity["@id"]] = f"https://pypi.org/project/cwltool/{version}/"
                entity.update(
                    name="cwltool",
                    softwareVersion=version,
                    url={"@id": "https://github.com/common-workflow-language/cwltool"},
                )
        elif "SoftwareApplication" in types:
            # A tool of the approved workflow: named absolutely, by the workflow's own identifier.
            if not entity["@id"].startswith("http"):
                renamed[entity["@id"]] = f"{workflow_url}#{entity['@id'].partition('#')[2] or 'tool'}"
            entity.setdefault("softwareVersion", workflow_version)
            entity.setdefault("url", {"@id": f"{tre.url.split('#')[0]}#approved-workflows"})
        if types and set(types) & _ACTION_TYPES:
            mentions.append({"@id": entity["@id"]})
            entity["agent"] = {"@id": tre.url}
            entity.setdefault("description", f"{entity.get('name', 'A step of the run')}, at {tre.name}.")
            for key in ("startTime", "endTime"):
                if key in entity:
                    entity[key] = _aware(entity[key])
            if "endTime" in entity:
                ends.append(entity["endTime"])
    for entity in graph:
        if set(_types(entity)) & _ACTION_TYPES and "endTime" not in entity and ends:
            entity["endTime"] = max(ends)
    root["mentions"] = mentions
    if renamed:
        for entity in graph:
            if entity["@id"] in renamed:
                entity["@id"] = renamed[entity["@id"]]
            else:
                _rename_references(entity, renamed)


def _single_values(entity: dict[str, Any]) -> dict[str, Any]:
    """RO-Crate 1.1 recommends ``"key": value`` over ``"key": [value]``."""
    return {
        key: value[0] if isinstance(value, list) and len(value) == 1 and key != "@type" else value
        for key, value in entity.items()
    }


def _is_data_copy(entity: dict[str, Any], identifier: str) -> bool:
    types = entity.get("@type")
    types = types if isinstance(types, list) else [types]
    return ("File" in types or "Dataset" in types) and bool(_SHA1_ID.match(identifier.rstrip("/")))


def _describe_data(
    entity: dict[str, Any], released_outputs: dict[str, str], kept: list[dict[str, Any]]
) -> str:
    name = str(entity.get("alternateName") or "data")
    parameter = entity.get("exampleOfWork")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    if name in released_outputs:
        identifier = f"#output-{slug}"
        described = {
            "@id": identifier,
            "@type": "File",
            "name": name,
            "description": f"An output of the run, returned for checking as outputs/{released_outputs[name]} "
            "in the results crate (not copied here).",
        }
        described["encodingFormat"] = mimetypes.guess_type(name)[0] or "application/octet-stream"
    else:
        first = parameter[0] if isinstance(parameter, list) and parameter else parameter
        parameter_name = str((first or {}).get("@id", "data")).rsplit("/", 1)[-1]
        identifier = f"#input-{re.sub(r'[^A-Za-z0-9._-]+', '-', parameter_name)}"
        described = {
            "@id": identifier,
            "@type": "File",
            "name": f"{parameter_name} (kept inside the TRE)",
            "description": "Data used inside the TRE; not included.",
            "encodingFormat": "application/octet-stream",
        }
    if parameter:
        described["exampleOfWork"] = parameter
    if not any(existing["@id"] == identifier for existing in kept):
        kept.append(described)
    return identifier


def _rename_references(node: Any, renamed: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key == "@id" and isinstance(value, str) and value in renamed and len(node) == 1:
                node[key] = renamed[value]
            else:
                _rename_references(value, renamed)
    elif isinstance(node, list):
        for item in node:
            _rename_references(item, renamed)
