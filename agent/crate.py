"""Reading a Five Safes RO-Crate's JSON-LD as plain data, and staging the request's inputs.

Received crates are read and edited as JSON, never round-tripped through ro-crate-py (which rewrites
Dataset ids). The request's run is *the* ``CreateAction`` mentioned from the root whose ``instrument``
is the root's ``mainEntity`` (5S-crate 0.4, "Requested Workflow Run").
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from agent.jobs import ParameterValue

__all__ = ["CrateError", "as_list", "entity_index", "ids", "requested_run", "root_entity", "stage_parameters"]


class CrateError(ValueError):
    """The crate's metadata lacks what the agent needs, or is inconsistent."""


def as_list(value: Any) -> list[Any]:
    """A JSON-LD value as a list (absent -> ``[]``, single -> ``[value]``)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def ids(value: Any) -> list[str]:
    """The ``@id`` of each reference in a JSON-LD value."""
    return [item["@id"] for item in as_list(value) if isinstance(item, Mapping) and "@id" in item]


def types(entity: Mapping[str, Any]) -> set[str]:
    """An entity's ``@type`` values."""
    return {str(item) for item in as_list(entity.get("@type"))}


def entity_index(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``@graph`` entities by ``@id`` (the dicts themselves, so edits show in ``metadata``)."""
    graph = metadata.get("@graph") if isinstance(metadata, Mapping) else None
    if not isinstance(graph, list):
        raise CrateError("the metadata has no @graph list")
    index: dict[str, dict[str, Any]] = {}
    for entity in graph:
        if not isinstance(entity, dict) or not isinstance(entity.get("@id"), str):
            raise CrateError("every @graph entry must be an object with an @id")
        if entity["@id"] in index:
            raise CrateError(f"entity {entity['@id']!r} appears twice in @graph")
        index[entity["@id"]] = entity
    return index


def root_entity(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The root data entity (the ``about`` of ``ro-crate-metadata.json``)."""
    index = entity_index(metadata)
    descriptor = index.get("ro-crate-metadata.json")
    root_ids = ids(descriptor.get("about")) if descriptor else []
    if len(root_ids) != 1 or root_ids[0] not in index:
        raise CrateError("ro-crate-metadata.json does not describe a root data entity")
    return index[root_ids[0]]


def requested_run(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The requested run: the one CreateAction mentioned from the root with ``instrument`` = mainEntity."""
    index = entity_index(metadata)
    root = root_entity(metadata)
    main_entity = ids(root.get("mainEntity"))
    if len(main_entity) != 1:
        raise CrateError("the root has no single mainEntity (the workflow)")
    runs = [
        index[identifier]
        for identifier in ids(root.get("mentions"))
        if identifier in index
        and "CreateAction" in types(index[identifier])
        and ids(index[identifier].get("instrument")) == main_entity
    ]
    if len(runs) != 1:
        raise CrateError(f"expected one requested run (CreateAction of the mainEntity), found {len(runs)}")
    return runs[0]


def stage_parameters(
    metadata: Mapping[str, Any], payload: Path, inputs_dir: Path
) -> dict[str, ParameterValue]:
    """The requested run's inputs as job parameters, copying input files from ``payload`` to ``inputs_dir``.

    Each ``object`` of the run is named by the ``name`` of its ``exampleOfWork`` formal parameter (or its
    own ``name``). A ``PropertyValue`` gives its ``value``; a ``File`` must be a relative path inside the
    crate's payload and is copied to the same relative path under ``inputs_dir``, whose path becomes
    the value. Anything else, a missing file, or two inputs with one name raise :class:`CrateError`.
    """
    index = entity_index(metadata)
    run = requested_run(metadata)
    payload = payload.resolve()
    parameters: dict[str, ParameterValue] = {}
    for identifier in ids(run.get("object")):
        entity = index.get(identifier)
        if entity is None:
            raise CrateError(f"input {identifier!r} is not described in the crate")
        formal = [index[ref] for ref in ids(entity.get("exampleOfWork")) if ref in index]
        name = (formal[0].get("name") if formal else None) or entity.get("name")
        if not isinstance(name, str) or not name:
            raise CrateError(f"input {identifier!r} has no parameter name")
        if name in parameters:
            raise CrateError(f"two inputs are given for parameter {name!r}")
        kinds = types(entity)
        if "PropertyValue" in kinds:
            value = entity.get("value")
            if isinstance(value, Mapping) or isinstance(value, list) or value is None:
                raise CrateError(f"input {identifier!r} needs a scalar value")
            parameters[name] = value
        elif "File" in kinds or "MediaObject" in kinds:
            parameters[name] = _stage_file(identifier, payload, inputs_dir)
        else:
            raise CrateError(f"input {identifier!r} is neither a File nor a PropertyValue")
    return parameters


def _stage_file(identifier: str, payload: Path, inputs_dir: Path) -> Path:
    relative = PurePosixPath(identifier)
    if urlparse(identifier).scheme or relative.is_absolute() or ".." in relative.parts:
        raise CrateError(f"input file {identifier!r} is not a path inside the crate")
    source = payload.joinpath(*relative.parts)
    if source.is_symlink() or not source.is_file():
        raise CrateError(f"input file {identifier!r} is not in the crate's payload")
    target = inputs_dir.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
