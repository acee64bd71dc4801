"""Recording the review of a crate in its own metadata, then re-sealing the bag.

Every function edits a received JSON-LD document (a ``dict`` as parsed from ``ro-crate-metadata.json``)
in place and never round-trips it through ro-crate-py, which would rewrite remote Dataset ids. Each
phase of the 5s-crate review is an action entity mentioned from the root data entity:

===========  =================  =============================================  ===================
phase        ``@type``          ``additionalType``                             function
===========  =================  =============================================  ===================
Check        AssessAction       ``https://w3id.org/shp#CheckValue``             add_check_action
Validation   AssessAction       ``https://w3id.org/shp#ValidationCheck``        add_validation_action
Retrieval    DownloadAction     (none)                                         add_download_action
Sign-off     AssessAction       ``https://w3id.org/shp#SignOff``                add_signoff_action
Execution    the CreateAction   (none)                                         record_execution
Disclosure   AssessAction       ``https://w3id.org/shp#DisclosureCheck``        add_disclosure_check
Publishing   UpdateAction       ``https://w3id.org/shp#GenerateCheckValue``     add_publishing_action
===========  =================  =============================================  ===================

Invariants kept by every function: ``actionStatus`` is a plain string (the profile compares strings);
times are RFC 3339 with a UTC offset; ``additionalType``, agents, objects and instruments are
``{"@id": ...}`` references to entities described in ``@graph`` (agents with a ``name``; software
agents with a ``provider`` organisation, as the profile requires); new entities get fresh
``#<phase>-<uuid4>`` ids; existing entities are extended, never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import vocab
from .bag import METADATA, regenerate_manifests
from .jsonld import BASE, CrateGraph, Ref, read_graph
from .safezip import is_plain_name
from .vocab import schema

__all__ = [
    "Agent",
    "Agreement",
    "License",
    "Organization",
    "Person",
    "Software",
    "add_check_action",
    "add_disclosure_check",
    "add_download_action",
    "add_publishing_action",
    "add_signoff_action",
    "add_validation_action",
    "pack_bag",
    "record_execution",
    "strip_assess_actions",
    "withhold_outputs",
    "write_metadata",
]

_SHA512_ENTITY = {"@id": vocab.SHA512_TERM, "@type": "DefinedTerm", "name": "sha-512 algorithm"}


def _require_id(kind: str, identifier: str) -> None:
    if not isinstance(identifier, str) or not identifier.strip() or identifier.startswith("_:"):
        raise ValueError(f"{kind} needs an @id that is a URL or a #fragment, not {identifier!r}")


def _require_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{kind} needs a name")


@dataclass(frozen=True, slots=True)
class Organization:
    """An organisation: a TRE, a university (ROR id), the federation."""

    id: str
    name: str

    def __post_init__(self) -> None:
        _require_id("An organisation", self.id)
        _require_name("An organisation", self.name)

    def entity(self) -> dict[str, Any]:
        return {"@id": self.id, "@type": "Organization", "name": self.name}


@dataclass(frozen=True, slots=True)
class Person:
    """A person acting in a review step (an officer, an output checker). ``id`` is an ORCID or profile URL."""

    id: str
    name: str
    affiliation: Organization | None = None

    def __post_init__(self) -> None:
        _require_id("A person", self.id)
        _require_name("A person", self.name)

    def entities(self) -> list[dict[str, Any]]:
        person: dict[str, Any] = {"@id": self.id, "@type": "Person", "name": self.name}
        if self.affiliation is None:
            return [person]
        person["affiliation"] = {"@id": self.affiliation.id}
        return [person, self.affiliation.entity()]


@dataclass(frozen=True, slots=True)
class Software:
    """Software acting for an organisation, e.g. the portal's validator provided by the federation."""

    id: str
    name: str
    provider: Organization

    def __post_init__(self) -> None:
        _require_id("Software", self.id)
        _require_name("Software", self.name)

    def entities(self) -> list[dict[str, Any]]:
        software = {
            "@id": self.id,
            "@type": "SoftwareApplication",
            "name": self.name,
            "provider": {"@id": self.provider.id},
        }
        return [software, self.provider.entity()]


Agent = Person | Software


@dataclass(frozen=True, slots=True)
class Agreement:
    """The data-access agreement (policy) a sign-off applies. ``id`` should be its permanent URL."""

    id: str
    name: str
    url: str | None = None

    def __post_init__(self) -> None:
        _require_id("An agreement", self.id)
        _require_name("An agreement", self.name)

    def entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"@id": self.id, "@type": "CreativeWork", "name": self.name}
        if self.url:
            entity["url"] = self.url
        return entity


@dataclass(frozen=True, slots=True)
class License:
    """The licence under which published outputs may be used (e.g. an SPDX URL)."""

    id: str
    name: str
    identifier: str | None = None

    def __post_init__(self) -> None:
        _require_id("A licence", self.id)
        _require_name("A licence", self.name)

    def entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"@id": self.id, "@type": "CreativeWork", "name": self.name}
        if self.identifier:
            entity["identifier"] = self.identifier
        return entity


# -- the document ----------------------------------------------------------------------------------------
class _Crate:
    """A received document with the lookups write-back needs. Raises ValueError if it is no crate."""

    def __init__(self, doc: dict[str, Any]) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("@graph"), list):
            raise ValueError("the metadata has no @graph list")
        self.entries: list[dict[str, Any]] = doc["@graph"]
        self.graph: CrateGraph = read_graph(doc)
        roots = [
            self.graph.key(_id)
            for entity in self.entries
            if isinstance(entity, dict) and self.key_of(entity).endswith("ro-crate-metadata.json")
            for _id in _ids(entity.get("about"))
        ]
        if len(set(roots)) != 1:
            raise ValueError("ro-crate-metadata.json must be about exactly one root data entity")
        self.root = self.find(roots[0])
        if self.root is None:
            raise ValueError("the root data entity is not described in @graph")

    def key_of(self, entity: Mapping[str, Any]) -> str:
        """The node key of a @graph entry ("" when it has no usable @id)."""
        identifier = entity.get("@id")
        return self.graph.key(identifier) if isinstance(identifier, str) else ""

    def find(self, identifier: str) -> dict[str, Any] | None:
        """The @graph entry for an @id as written, or for a node key (keys resolve to themselves)."""
        key = self.graph.key(identifier)
        return next((e for e in self.entries if isinstance(e, dict) and self.key_of(e) == key), None)

    def is_local(self, identifier: str) -> bool:
        """Whether ``identifier`` is a file or folder inside the crate (not a web address or #fragment)."""
        key = self.graph.key(identifier)
        return key.startswith(BASE) and key != BASE and "#" not in key

    def root_id(self) -> str:
        return self.root["@id"]

    def upsert(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        """Add ``entity``, or extend the entity with its id: missing keys are added, types merged."""
        existing = self.find(entity["@id"])
        if existing is None:
            added = dict(entity)
            self.entries.append(added)
            return added
        for key, value in entity.items():
            if key == "@type":
                types = _as_list(existing.get("@type"))
                merged = types + [t for t in _as_list(value) if t not in types]
                existing["@type"] = merged[0] if len(merged) == 1 else merged
            elif key not in existing:
                existing[key] = value
        return existing

    def requested_run(self) -> dict[str, Any]:
        """The CreateAction mentioned from the root whose instrument is the root's mainEntity."""
        main = {self.graph.key(i) for i in _ids(self.root.get("mainEntity"))}
        runs = []
        for identifier in _ids(self.root.get("mentions")):
            entity = self.find(identifier)
            if entity is None or schema("CreateAction") not in self.graph.types(Ref(self.key_of(entity))):
                continue
            if {self.graph.key(i) for i in _ids(entity.get("instrument"))} == main and main:
                runs.append(entity)
        if len(runs) != 1:
            raise ValueError(
                f"expected one requested run (CreateAction of the mainEntity), found {len(runs)}"
            )
        return runs[0]

    def add_action(self, action: dict[str, Any], related: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        for entity in related:
            self.upsert(entity)
        self.entries.append(action)
        _append_ref(self.root, "mentions", action["@id"])
        return action


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _ids(value: Any) -> list[str]:
    return [v["@id"] for v in _as_list(value) if isinstance(v, Mapping) and isinstance(v.get("@id"), str)]


def _ref(identifiers: Sequence[str]) -> dict[str, str] | list[dict[str, str]]:
    refs = [{"@id": identifier} for identifier in dict.fromkeys(identifiers)]
    return refs[0] if len(refs) == 1 else refs


def _append_ref(entity: dict[str, Any], prop: str, identifier: str) -> None:
    values = _as_list(entity.get(prop))
    if identifier not in _ids(values):
        values.append({"@id": identifier})
    entity[prop] = values


def _timestamp(moment: datetime | None) -> str:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware (RFC 3339 needs an offset)")
    return moment.isoformat(timespec="seconds")


def _status(ok: bool) -> str:
    return vocab.COMPLETED if ok else vocab.FAILED


def _agent_entities(agents: Iterable[Agent]) -> list[dict[str, Any]]:
    return [entity for agent in agents for entity in agent.entities()]


def _action(
    prefix: str,
    *,
    type_: str,
    additional_type: str | None,
    name: str,
    status: str,
    agents: Sequence[Agent],
    objects: Sequence[str],
    instruments: Sequence[str] = (),
    started: datetime | None,
    ended: datetime | None,
    description: str | None = None,
    record_end: bool = True,
) -> dict[str, Any]:
    action: dict[str, Any] = {"@id": f"#{prefix}-{uuid.uuid4()}", "@type": type_}
    if additional_type:
        action["additionalType"] = {"@id": additional_type}
    action["name"] = name
    if description:
        action["description"] = description
    action["actionStatus"] = status
    action["object"] = _ref(objects)
    if instruments:
        action["instrument"] = _ref(instruments)
    if agents:
        action["agent"] = _ref([agent.id for agent in agents])
    if started is not None or status != vocab.POTENTIAL:
        action["startTime"] = _timestamp(started)
    if status in vocab.ENDED_STATUSES and record_end:
        action["endTime"] = _timestamp(ended)
    return action


# -- intake -----------------------------------------------------------------------------------------------
def strip_assess_actions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Remove review steps a client put in its crate, and every reference to them; return what was removed.

    A client must not be able to pre-approve its own request (5s-crate, "Security considerations"), so
    this removes every AssessAction and every entity whose additionalType is one of the TRE review
    steps (CheckValue, ValidationCheck, SignOff, DisclosureCheck, GenerateCheckValue), then deletes
    ``{"@id": ...}`` references to them from all entities (the root's ``mentions`` included), dropping
    properties left empty.
    """
    crate = _Crate(doc)
    graph = crate.graph
    review = {Ref(step) for step in vocab.REVIEW_STEPS}
    doomed = {
        node.key
        for node in graph.nodes.values()
        if schema("AssessAction") in node.types or review & set(node.values(schema("additionalType")))
    }
    removed = [e for e in crate.entries if isinstance(e, dict) and crate.key_of(e) in doomed]
    crate.entries[:] = [e for e in crate.entries if not (isinstance(e, dict) and crate.key_of(e) in doomed)]
    for entity in crate.entries:
        if not isinstance(entity, dict):
            continue
        for prop in [key for key in entity if not key.startswith("@")]:
            value = entity[prop]
            if isinstance(value, list):
                kept = [v for v in value if not _refers_to(crate, v, doomed)]
                if len(kept) != len(value):
                    if kept:
                        entity[prop] = kept
                    else:
                        del entity[prop]
            elif _refers_to(crate, value, doomed):
                del entity[prop]
    return removed


def _refers_to(crate: _Crate, value: Any, keys: set[str]) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("@id"), str)
        and crate.graph.key(value["@id"]) in keys
    )


# -- the portal's steps ----------------------------------------------------------------------------------
def add_check_action(
    doc: dict[str, Any],
    *,
    agent: Agent,
    ok: bool,
    detail: str | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> dict[str, Any]:
    """Record the Check phase: the BagIt SHA-512 checksums were verified (``ok``) or not."""
    crate = _Crate(doc)
    action = _action(
        "check",
        type_="AssessAction",
        additional_type=vocab.CHECK_VALUE,
        name=f"BagIt checksum of Crate: {'OK' if ok else 'FAILED'}",
        description=detail,
        status=_status(ok),
        agents=[agent],
        objects=[crate.root_id()],
        instruments=[vocab.SHA512_TERM],
        started=started,
        ended=ended,
    )
    return crate.add_action(action, [_SHA512_ENTITY, *agent.entities()])


def add_validation_action(
    doc: dict[str, Any],
    *,
    agent: Agent,
    valid: bool,
    detail: str | None = None,
    profile: str | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> dict[str, Any]:
    """Record the Validation phase against ``profile`` (default: the supported profile the crate declares)."""
    crate = _Crate(doc)
    if profile is None:
        declared = [crate.graph.key(i) for i in _ids(crate.root.get("conformsTo"))]
        profile = next((p for p in declared if p in vocab.SUPPORTED_PROFILES), vocab.PROFILE_0_4)
    action = _action(
        "validate",
        type_="AssessAction",
        additional_type=vocab.VALIDATION_CHECK,
        name=f"Validation against Five Safes RO-Crate profile: {'passed' if valid else 'failed'}",
        description=detail,
        status=_status(valid),
        agents=[agent],
        objects=[crate.root_id()],
        instruments=[profile],
        started=started,
        ended=ended,
    )
    profile_entity = {"@id": profile, "@type": "Profile", "name": vocab.PROFILE_NAME}
    return crate.add_action(action, [profile_entity, *agent.entities()])


def add_download_action(
    doc: dict[str, Any],
    *,
    agent: Agent,
    ok: bool,
    source: str | None = None,
    unpacked_to: str | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> dict[str, Any]:
    """Record the Workflow retrieval phase: the Workflow RO-Crate was fetched from ``source``.

    ``source`` defaults to the mainEntity's ``distribution``. When the workflow was unpacked into the
    payload, ``unpacked_to`` (a folder path such as ``workflow/``) is recorded as the result: a Dataset
    that is ``sameAs`` the mainEntity with ``distribution`` = ``source``, as the profile requires.
    """
    crate = _Crate(doc)
    main_ids = _ids(crate.root.get("mainEntity"))
    if len(main_ids) != 1:
        raise ValueError("the root has no single mainEntity (the workflow)")
    workflow = crate.find(main_ids[0]) or {}
    if source is None:
        distributions = _ids(workflow.get("distribution"))
        if not distributions:
            raise ValueError("the workflow has no distribution; pass source=")
        source = distributions[0]
    action = _action(
        "download",
        type_="DownloadAction",
        additional_type=None,
        name="Downloaded workflow RO-Crate" + ("" if ok else ": FAILED"),
        status=_status(ok),
        agents=[agent],
        objects=[source],
        started=started,
        ended=ended,
    )
    related = [*agent.entities()]
    if unpacked_to is not None:
        folder = unpacked_to if unpacked_to.endswith("/") else unpacked_to + "/"
        action["result"] = {"@id": folder}
        unpacked = {
            "@id": folder,
            "@type": "Dataset",
            "name": workflow.get("name", "Workflow RO-Crate"),
            "sameAs": {"@id": main_ids[0]},
            "distribution": {"@id": source},
            "conformsTo": {"@id": vocab.WORKFLOW_RO_CRATE_1_0},
        }
        related.append(unpacked)
        _append_ref(crate.root, "hasPart", folder)
    return crate.add_action(action, related)


def add_signoff_action(
    doc: dict[str, Any],
    *,
    officer: Person,
    agreement: Agreement,
    approved: bool,
    message: str | None = None,
    project_id: str | None = None,
    workflow_id: str | None = None,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> dict[str, Any]:
    """Record the Sign-off phase: ``officer`` approved (or rejected) the run under ``agreement``.

    The object lists the crate, the workflow and the responsible project (by default the root's
    mainEntity and sourceOrganization); ``message`` is the officer's rationale.
    """
    crate = _Crate(doc)
    workflow_ids = [workflow_id] if workflow_id else _ids(crate.root.get("mainEntity"))
    project_ids = [project_id] if project_id else _ids(crate.root.get("sourceOrganization"))
    action = _action(
        "signoff",
        type_="AssessAction",
        additional_type=vocab.SIGN_OFF,
        name=f"Sign-off of execution according to agreement policy: {'approved' if approved else 'rejected'}",
        description=message,
        status=_status(approved),
        agents=[officer],
        objects=[crate.root_id(), *workflow_ids, *project_ids],
        instruments=[agreement.id],
        started=started,
        ended=ended,
    )
    return crate.add_action(action, [agreement.entity(), *officer.entities()])


def record_execution(
    doc: dict[str, Any],
    *,
    status: str,
    started: datetime | None = None,
    ended: datetime | None = None,
    results: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Record the Workflow execution phase on the requested run: its status, times and outputs.

    ``results`` are output entities (each with ``@id`` and ``@type``, e.g. a ``File`` under ``outputs/``);
    they become the run's ``result`` and, being part of the crate, the root's ``hasPart``.
    """
    if status not in vocab.ACTION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(vocab.ACTION_STATUSES)}")
    crate = _Crate(doc)
    run = crate.requested_run()
    run["actionStatus"] = status
    if status in vocab.STARTED_STATUSES:
        run["startTime"] = _timestamp(started)
    if status in vocab.ENDED_STATUSES:
        run["endTime"] = _timestamp(ended)
    for result in results:
        if not isinstance(result.get("@id"), str) or "@type" not in result:
            raise ValueError("each result needs an @id and a @type")
        crate.upsert(result)
        _append_ref(run, "result", result["@id"])
        if crate.is_local(result["@id"]):
            _append_ref(crate.root, "hasPart", result["@id"])
    return run


def add_disclosure_check(
    doc: dict[str, Any],
    *,
    approved: bool,
    checkers: Sequence[Agent],
    message: str | None = None,
    checked: Sequence[str] = (),
    started: datetime | None = None,
    ended: datetime | None = None,
) -> dict[str, Any]:
    """Record the Disclosure phase: the outputs were approved for release (or not) by ``checkers``.

    ``checked`` adds output ids to the object beside the crate itself. After a rejection, call
    :func:`withhold_outputs`: a crate that failed disclosure must not carry its outputs.
    """
    if not checkers:
        raise ValueError("a disclosure check needs at least one checker")
    crate = _Crate(doc)
    action = _action(
        "disclosure",
        type_="AssessAction",
        additional_type=vocab.DISCLOSURE_CHECK,
        name=f"Disclosure check of workflow results: {'approved' if approved else 'rejected'}",
        description=message,
        status=_status(approved),
        agents=checkers,
        objects=[crate.root_id(), *checked],
        started=started,
        ended=ended,
    )
    return crate.add_action(action, _agent_entities(checkers))


def withhold_outputs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Remove the requested run's outputs from the metadata; return the removed entities.

    The run itself stays (the profile requires it); its ``result`` and the outputs' ``hasPart``
    entries go. Deleting the output files from the payload is the caller's job: their ids are the
    paths relative to ``data/``.
    """
    crate = _Crate(doc)
    run = crate.requested_run()
    output_ids = _ids(run.pop("result", None))
    keys = {crate.graph.key(i) for i in output_ids}
    removed = [e for e in crate.entries if isinstance(e, dict) and crate.key_of(e) in keys]
    crate.entries[:] = [e for e in crate.entries if not (isinstance(e, dict) and crate.key_of(e) in keys)]
    parts = [p for p in _as_list(crate.root.get("hasPart")) if not _refers_to(crate, p, keys)]
    if parts:
        crate.root["hasPart"] = parts
    else:
        crate.root.pop("hasPart", None)
    return removed


def add_publishing_action(
    doc: dict[str, Any],
    *,
    agent: Agent,
    publisher: Organization,
    license: License,  # noqa: A002 - the RO-Crate property is called license
    published: datetime | None = None,
) -> dict[str, Any]:
    """Record the Publishing phase and do its housekeeping on the root data entity.

    Sets ``datePublished``, ``publisher`` and ``license``; makes the root mention every AssessAction and
    include every output file or folder in ``hasPart``. The UpdateAction is written before the
    manifests are computed, so it has a startTime but no endTime, and is Completed as if done
    (5s-crate, "Publishing phase"). Call :func:`write_metadata` next, then make no further changes.
    """
    crate = _Crate(doc)
    moment = _timestamp(published)
    root = crate.root
    root["datePublished"] = moment
    root["publisher"] = {"@id": publisher.id}
    root["license"] = {"@id": license.id}
    for node in crate.graph.instances(schema("AssessAction")):
        entity = crate.find(node.key)
        if entity is not None:
            _append_ref(root, "mentions", entity["@id"])
    for identifier in _ids(crate.requested_run().get("result")):
        if crate.is_local(identifier) and not _reachable(crate, identifier):
            _append_ref(root, "hasPart", identifier)
    action = _action(
        "publish",
        type_="UpdateAction",
        additional_type=vocab.GENERATE_CHECK_VALUE,
        name="BagIt manifests of Crate updated",
        status=vocab.COMPLETED,
        agents=[agent],
        objects=[crate.root_id()],
        instruments=[vocab.SHA512_TERM],
        started=published,
        ended=None,
        # Written before the manifests it describes, so it cannot know when it ended.
        record_end=False,
    )
    return crate.add_action(action, [_SHA512_ENTITY, publisher.entity(), license.entity(), *agent.entities()])


def _reachable(crate: _Crate, identifier: str) -> bool:
    """Whether ``identifier`` is in the root's hasPart, directly or through Datasets (folders)."""
    target = crate.graph.key(identifier)
    seen: set[str] = set()
    pending = [crate.graph.key(i) for i in _ids(crate.root.get("hasPart"))]
    while pending:
        key = pending.pop()
        if key == target:
            return True
        if key in seen:
            continue
        seen.add(key)
        pending.extend(
            term.key for term in crate.graph.values(Ref(key), schema("hasPart")) if isinstance(term, Ref)
        )
    return False


# -- files ----------------------------------------------------------------------------------------------
def write_metadata(bag_dir: str | Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` as the bag's ``data/ro-crate-metadata.json`` and regenerate the bag's manifests."""
    bag_dir = Path(bag_dir)
    target = bag_dir / METADATA
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".ro-crate-metadata.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    regenerate_manifests(bag_dir)
    return target


def pack_bag(bag_dir: str | Path, zip_path: str | Path) -> Path:
    """Zip ``bag_dir`` as the single top-level folder of ``zip_path`` (replaced atomically).

    Entries are sorted, folders are included (so empty output folders survive) and names follow the
    same rules :func:`~crates.fivesafes.safezip.extract_bag` enforces, so the result can be read back.
    """
    bag_dir = Path(bag_dir)
    zip_path = Path(zip_path)
    if not (bag_dir / "bagit.txt").is_file():
        raise ValueError(f"{bag_dir} is not a bag")
    members: list[tuple[Path, str]] = [(bag_dir, bag_dir.name + "/")]
    for root, dirs, files in os.walk(bag_dir):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            path = Path(root, name)
            relative = path.relative_to(bag_dir.parent).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise ValueError(f"{relative} is not a regular file or folder")
            if not all(is_plain_name(part) for part in relative.split("/")):
                raise ValueError(f"{relative} has a name a crate ZIP may not contain")
            members.append((path, relative + "/" if path.is_dir() else relative))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=zip_path.parent, prefix=f".{zip_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(
            temporary, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False
        ) as archive:
            for path, arcname in sorted(members, key=lambda member: member[1]):
                archive.write(path, arcname)
        os.replace(temporary, zip_path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return zip_path
