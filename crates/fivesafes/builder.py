"""Building a new Five Safes request crate from what a researcher filled in.

:func:`build_request_crate` makes the RO-Crate with ro-crate-py (RO-Crate 1.2: its 1.3 default maps
``FormalParameter`` to an IRI the community profile does not expect), wraps it in a BagIt 1.0 bag with
a fresh ``urn:uuid:`` External-Identifier and zips it. Remote entities (the workflow, datasets, TREs)
are added as raw JSON-LD, because ro-crate-py's ``Dataset`` appends ``/`` to ids such as
``https://workflowhub.eu/workflows/289?version=1``. A crate that would fail a REQUIRED check is never
written: the metadata is validated before it is bagged.

Conventions beyond the profile, read back by :func:`requested_datasets` and :func:`target_tres`:

* requested datasets are ``Dataset`` entities mentioned from the root (their ``identifier`` is the
  registry's identifier), not inputs of the run: the TRE resolves them, the workflow does not receive them;
* target TREs are ``Organization`` entities given as the run's ``location``, where it is to take place.
"""

from __future__ import annotations

import json
import mimetypes
import re
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocrate.rocrate import ROCrate

from . import vocab
from .bag import create_bag
from .validator import Report, validate_metadata
from .writeback import pack_bag

__all__ = [
    "BuiltCrate",
    "InputFile",
    "InputParameter",
    "RequestSpec",
    "TargetTre",
    "build_request_crate",
    "requested_datasets",
    "target_tres",
]

_ORCID_RE = re.compile(r"^https://orcid\.org/\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
_WEB_RE = re.compile(r"^https?://[^\s/]+")
# Fixed namespace so the same registry identifier always yields the same local @id.
_ID_NAMESPACE = uuid.UUID("5f2b7c1e-7d1a-4c0e-9a57-6a1f2b0c9e31")


@dataclass(frozen=True, slots=True)
class InputParameter:
    """A value for one workflow parameter (a ``PropertyValue`` input of the run)."""

    name: str
    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file shipped in the crate for one workflow parameter (default: the file name without suffix)."""

    path: Path
    parameter: str | None = None

    @property
    def parameter_name(self) -> str:
        return self.parameter or Path(self.path).stem


@dataclass(frozen=True, slots=True)
class TargetTre:
    """A Trusted Research Environment the request is addressed to."""

    name: str
    url: str


@dataclass(frozen=True)
class RequestSpec:
    """Everything a request crate says. Validated on creation (``ValueError`` names the field).

    ``project_identifier`` becomes the project's ``@id`` when it is a web address, otherwise its
    ``identifier``; ``affiliation_id`` should be the organisation's ROR URL; ``workflow_id`` must be
    a versioned web address of a Workflow RO-Crate (e.g. WorkflowHub's ``...?version=1``).
    """

    title: str
    description: str
    project_identifier: str
    project_name: str
    person_name: str
    affiliation_name: str
    workflow_id: str
    workflow_version: str
    workflow_name: str
    person_orcid: str | None = None
    affiliation_id: str | None = None
    workflow_distribution: str | None = None
    parameters: Sequence[InputParameter] = ()
    input_files: Sequence[InputFile] = ()
    datasets: Sequence[str] = ()
    target_tres: Sequence[TargetTre] = ()

    def __post_init__(self) -> None:
        for name in (
            "title",
            "description",
            "project_identifier",
            "project_name",
            "person_name",
            "affiliation_name",
            "workflow_id",
            "workflow_version",
            "workflow_name",
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
        if self.person_orcid is not None and not _ORCID_RE.match(self.person_orcid):
            raise ValueError("person_orcid must look like https://orcid.org/0000-0002-1825-0097")
        for name in ("workflow_id", "workflow_distribution", "affiliation_id"):
            value = getattr(self, name)
            if value is not None and not _WEB_RE.match(value):
                raise ValueError(f"{name} must be an http(s) address")
        for tre in self.target_tres:
            if not tre.name.strip() or not _WEB_RE.match(tre.url):
                raise ValueError("each target TRE needs a name and an http(s) address")
        names = [p.name for p in self.parameters] + [f.parameter_name for f in self.input_files]
        if any(not name.strip() for name in names):
            raise ValueError("every input needs a parameter name")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"each parameter may be given once; repeated: {', '.join(repeated)}")
        files = [Path(f.path).name for f in self.input_files]
        if len(set(files)) != len(files):
            raise ValueError("input files must have distinct file names")
        for input_file in self.input_files:
            if not Path(input_file.path).is_file():
                raise ValueError(f"input file {input_file.path} does not exist")
        if any(not isinstance(d, str) or not d.strip() for d in self.datasets):
            raise ValueError("dataset identifiers must be non-empty strings")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError("each dataset may be requested once")


@dataclass(frozen=True, slots=True)
class BuiltCrate:
    """A request crate on disk: the ZIP, its bag identifier, the requested run's @id and its validation."""

    path: Path
    external_identifier: str
    run_id: str
    report: Report


def build_request_crate(
    spec: RequestSpec, out_zip: str | Path, *, external_identifier: str | None = None
) -> BuiltCrate:
    """Write the request described by ``spec`` as a crate ZIP at ``out_zip``.

    Raises ``ValueError`` (with the report's errors) if the metadata would fail a REQUIRED check.
    """
    out_zip = Path(out_zip)
    run_id = f"#run-{uuid.uuid4()}"
    crate = _make_crate(spec, run_id)
    with tempfile.TemporaryDirectory(prefix="request-crate-") as scratch:
        bag_dir = Path(scratch) / f"request-{uuid.uuid4()}"
        crate.write(bag_dir / "data")
        document = json.loads((bag_dir / "data" / "ro-crate-metadata.json").read_text(encoding="utf-8"))
        report = validate_metadata(document)
        if not report.valid:
            problems = "; ".join(f"{issue.check}: {issue.message}" for issue in report.errors)
            raise ValueError(f"the request crate would be invalid: {problems}")
        identifier = create_bag(bag_dir, external_identifier)
        pack_bag(bag_dir, out_zip)
    return BuiltCrate(out_zip, identifier, run_id, report)


def _make_crate(spec: RequestSpec, run_id: str) -> ROCrate:
    crate = ROCrate(version="1.2")
    root = crate.root_dataset
    root["name"] = spec.title
    root["description"] = spec.description
    root["conformsTo"] = {"@id": vocab.PROFILE_0_4}
    _add(crate, {"@id": vocab.PROFILE_0_4, "@type": "Profile", "name": vocab.PROFILE_NAME})

    workflow = _add(crate, _workflow(spec))
    root.append_to("hasPart", workflow)
    root["mainEntity"] = workflow
    if spec.workflow_distribution:
        _add(
            crate,
            {
                "@id": spec.workflow_distribution,
                "@type": "DataDownload",
                "encodingFormat": "application/zip",
                "conformsTo": {"@id": vocab.RO_CRATE_ZIP_PROFILE},
            },
        )

    organisation_id = spec.affiliation_id or _local_id("organization", spec.affiliation_name)
    _add(crate, {"@id": organisation_id, "@type": "Organization", "name": spec.affiliation_name})
    project = _project(spec, organisation_id)
    _add(crate, project)
    root["sourceOrganization"] = {"@id": project["@id"]}
    person_id = spec.person_orcid or f"#person-{uuid.uuid4()}"
    _add(
        crate,
        {
            "@id": person_id,
            "@type": "Person",
            "name": spec.person_name,
            "affiliation": {"@id": organisation_id},
            "memberOf": {"@id": project["@id"]},
        },
    )

    inputs = [
        *(_parameter_input(crate, p) for p in spec.parameters),
        *(_file_input(crate, f) for f in spec.input_files),
    ]
    tres = [_tre(crate, tre) for tre in spec.target_tres]
    properties: dict[str, Any] = {
        "name": f"Run {spec.workflow_name} for {spec.project_name}",
        "actionStatus": vocab.POTENTIAL,
        "agent": {"@id": person_id},
    }
    if tres:
        properties["location"] = [{"@id": tre} for tre in tres]
    run = crate.add_action(workflow, identifier=run_id, object=inputs or None, properties=properties)
    root.append_to("mentions", run)
    for identifier in spec.datasets:
        root.append_to("mentions", _add(crate, _dataset(identifier)))
    return crate


def _add(crate: ROCrate, entity: Mapping[str, Any]) -> Any:
    """Describe ``entity`` once: an organisation that is also a target TRE keeps its first description."""
    existing = crate.get(entity["@id"])
    if existing is not None:
        return existing
    # ro-crate-py's add_jsonld pops "@id" from the dict it is given: hand it a copy.
    return crate.add_jsonld(dict(entity))


def _workflow(spec: RequestSpec) -> dict[str, Any]:
    workflow: dict[str, Any] = {
        "@id": spec.workflow_id,
        "@type": "Dataset",
        "name": spec.workflow_name,
        "version": spec.workflow_version,
        "conformsTo": {"@id": vocab.WORKFLOW_RO_CRATE_1_0},
    }
    if spec.workflow_distribution:
        workflow["distribution"] = {"@id": spec.workflow_distribution}
    return workflow


def _project(spec: RequestSpec, organisation_id: str) -> dict[str, Any]:
    project: dict[str, Any] = {
        "@type": "Project",
        "name": spec.project_name,
        "member": {"@id": organisation_id},
    }
    if _WEB_RE.match(spec.project_identifier):
        project["@id"] = spec.project_identifier
    else:
        project["@id"] = _local_id("project", spec.project_identifier)
        project["identifier"] = spec.project_identifier
    return project


def _parameter_input(crate: ROCrate, parameter: InputParameter) -> Any:
    kind = {bool: "Boolean", int: "Integer", float: "Float"}.get(type(parameter.value), "Text")
    formal = crate.add_formal_parameter(
        name=parameter.name,
        additionalType=kind,
        identifier=_local_id("param", parameter.name),
        valueRequired=True,
    )
    return _add(
        crate,
        {
            "@id": _local_id("input", parameter.name),
            "@type": "PropertyValue",
            "name": parameter.name,
            "value": parameter.value,
            "exampleOfWork": {"@id": formal.id},
        },
    )


def _file_input(crate: ROCrate, input_file: InputFile) -> Any:
    name = input_file.parameter_name
    formal = crate.add_formal_parameter(
        name=name, additionalType="File", identifier=_local_id("param", name), valueRequired=True
    )
    path = Path(input_file.path)
    properties: dict[str, Any] = {"name": name, "exampleOfWork": {"@id": formal.id}}
    media_type, _ = mimetypes.guess_type(path.name)
    if media_type:
        properties["encodingFormat"] = media_type
    return crate.add_file(path, dest_path=f"inputs/{path.name}", properties=properties)


def _tre(crate: ROCrate, tre: TargetTre) -> str:
    _add(crate, {"@id": tre.url, "@type": "Organization", "name": tre.name, "url": tre.url})
    return tre.url


def _dataset(identifier: str) -> dict[str, Any]:
    if _WEB_RE.match(identifier):
        return {"@id": identifier, "@type": "Dataset", "name": identifier, "identifier": identifier}
    return {
        "@id": _local_id("dataset", identifier),
        "@type": "Dataset",
        "name": identifier,
        "identifier": identifier,
    }


def _local_id(kind: str, value: str) -> str:
    """A ``#kind-<uuid5>`` id: stable for one value, distinct for distinct values (unlike slugs)."""
    return f"#{kind}-{uuid.uuid5(_ID_NAMESPACE, f'{kind}:{value}')}"


# -- reading the conventions back -------------------------------------------------------------------------
def requested_datasets(doc: Mapping[str, Any]) -> list[str]:
    """Identifiers of the datasets a request crate asks for (root ``mentions`` of type ``Dataset``)."""
    entities, root, _ = _parts(doc)
    found = []
    for identifier in _ids(root.get("mentions")):
        entity = entities.get(identifier, {})
        if "Dataset" in _as_list(entity.get("@type")):
            value = entity.get("identifier")
            found.append(value if isinstance(value, str) else identifier)
    return found


def target_tres(doc: Mapping[str, Any]) -> list[TargetTre]:
    """The TREs a request crate is addressed to (the requested run's ``location``)."""
    entities, _, run = _parts(doc)
    tres = []
    for identifier in _ids(run.get("location")):
        entity = entities.get(identifier, {})
        name = entity.get("name")
        url = entity.get("url") if isinstance(entity.get("url"), str) else identifier
        tres.append(TargetTre(name if isinstance(name, str) else identifier, url))
    return tres


def _parts(doc: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Any]]:
    graph = doc.get("@graph") if isinstance(doc, Mapping) else None
    if not isinstance(graph, list):
        raise ValueError("the metadata has no @graph list")
    entities = {e["@id"]: e for e in graph if isinstance(e, dict) and isinstance(e.get("@id"), str)}
    about = _ids(entities.get("ro-crate-metadata.json", {}).get("about"))
    root = entities.get(about[0], {}) if about else {}
    main = _ids(root.get("mainEntity"))
    runs = [
        entities[i]
        for i in _ids(root.get("mentions"))
        if i in entities
        and "CreateAction" in _as_list(entities[i].get("@type"))
        and _ids(entities[i].get("instrument")) == main
    ]
    return entities, root, runs[0] if len(runs) == 1 else {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _ids(value: Any) -> list[str]:
    return [v["@id"] for v in _as_list(value) if isinstance(v, Mapping) and isinstance(v.get("@id"), str)]
