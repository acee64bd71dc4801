"""Validation of Five Safes RO-Crate metadata (profile 0.4, and 0.5-DRAFT which only renames it).

:func:`validate_metadata` applies every check of the community SHACL profile (crs4/rocrate-validator
PR #167, ``five-safes-crate``) with the same targets and the same meaning, reported under the same
check identifiers (``five-safes-crate-0.4_<requirement>.<check>``), plus the RO-Crate essentials the
profile relies on and a few MUSTs of the 5s-crate specification that the community profile leaves out:

* ``ro-crate.*``: the metadata is a flattened JSON-LD document with a descriptor and a ``Dataset`` root;
* ``5s-crate.root_id``: the root is ``./``; ``5s-crate.outside_reference``: nothing points outside the
  crate (e.g. ``../fetch.txt``); ``5s-crate.profile``: the declared profile version is one we check.

Where the community profile and the prose specification differ, the profile wins, so a crate this
module accepts at REQUIRED is accepted by the community validator too (tests prove it on every example
crate and on crates that break one rule each). Two deliberate differences: a crate declaring profile
0.5-DRAFT may name 0.5-DRAFT where 0.4 is recommended; and the two shapes the community profile
declares under one name for the ValidationCheck's ``actionStatus`` are reported once, as ``6.2``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import vocab
from .jsonld import BASE, CrateGraph, Lit, Node, Ref, Term, read_graph
from .vocab import schema

__all__ = ["CHECKS", "CheckInfo", "Issue", "Report", "Severity", "sort_issues", "validate_metadata"]

_P = "five-safes-crate-0.4_"
_DESCRIPTOR_SUFFIXES = ("ro-crate-metadata.json", "ro-crate-metadata.jsonld")

NAME = schema("name")
STATUS = schema("actionStatus")
AGENT = schema("agent")
INSTRUMENT = schema("instrument")
OBJECT = schema("object")
RESULT = schema("result")
MENTIONS = schema("mentions")
MAIN_ENTITY = schema("mainEntity")
START = schema("startTime")
END = schema("endTime")
ADDITIONAL_TYPE = schema("additionalType")
CONFORMS_TO = vocab.DCT + "conformsTo"


class Severity(enum.StrEnum):
    """How much a check matters: REQUIRED failures make a crate invalid, the others are advice."""

    REQUIRED = "REQUIRED"
    RECOMMENDED = "RECOMMENDED"
    OPTIONAL = "OPTIONAL"


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """What one check identifier means."""

    severity: Severity
    title: str


def _catalogue() -> dict[str, CheckInfo]:
    r, s, o = Severity.REQUIRED, Severity.RECOMMENDED, Severity.OPTIONAL
    profile = {
        "1.1": (r, "The requested run (CreateAction) has a name of at least 10 characters"),
        "2.1": (r, "The requested run has an allowed actionStatus"),
        "3.1": (r, "A CheckValue step is an AssessAction"),
        "3.2": (r, "A CheckValue step's name is a string"),
        "4.1": (r, "A CheckValue step's actionStatus is allowed"),
        "5.1": (r, "A ValidationCheck step is an AssessAction"),
        "5.2": (r, "A ValidationCheck step's name is a string"),
        "6.2": (r, "A ValidationCheck step has an allowed actionStatus"),
        "7.1": (r, "A DownloadAction has exactly one name string"),
        "8.1": (r, "A DownloadAction's actionStatus is allowed"),
        "9.0": (r, "A downloaded workflow is sameAs the root's mainEntity"),
        "10.0": (r, "A downloaded workflow's distribution is what the DownloadAction downloaded"),
        "11.1": (r, "The @context is RO-Crate 1.2 or a later 1.x"),
        "12.1": (r, "The metadata descriptor conformsTo RO-Crate 1.2 or a later 1.x"),
        "13.1": (r, "Every AssessAction is mentioned"),
        "14.0": (r, "The requesting agent is a member of the root's sourceOrganization project"),
        "15.1": (r, "The requesting agent's memberOf values are Projects"),
        "16.1": (r, "The responsible project's funding is a Grant"),
        "16.2": (r, "The responsible project's members are Organizations or Persons"),
        "17.1": (r, "The root has a sourceOrganization"),
        "17.2": (r, "The root's sourceOrganization is a Project"),
        "18.1": (r, "The requested run has an agent"),
        "18.2": (r, "The requested run's agent is a Person"),
        "18.3": (r, "The requesting agent's affiliation is an Organization"),
        "19.1": (r, "endTime values are RFC 3339 timestamps"),
        "19.2": (r, "startTime values are RFC 3339 timestamps"),
        "20.1": (r, "A SignOff step has a name string"),
        "20.2": (r, "A SignOff step is an AssessAction"),
        "21.1": (r, "A SignOff step's actionStatus is allowed"),
        "22.1": (r, "The root has exactly one mainEntity, given by @id"),
        "22.2": (r, "The root's mainEntity is a Dataset"),
        "23.1": (r, "The mainEntity has exactly one conformsTo"),
        "23.2": (r, "The mainEntity conforms to Workflow RO-Crate"),
        "24.0": (r, "The requested run's instrument is the mainEntity and its inputs are described"),
        "24.1": (r, "The requested run has an instrument"),
        "25.1": (r, "The root mentions the requested run (CreateAction)"),
        "26.1": (r, "A DisclosureCheck step is an AssessAction"),
        "26.2": (r, "A DisclosureCheck step has a name of at least 10 characters"),
        "27.1": (r, "A DisclosureCheck step's actionStatus is allowed"),
        "28.1": (s, "A completed run lists its result"),
        "29.0": (s, "Each result is a File, Dataset, Collection, DigitalDocument or PropertyValue"),
        "30.0": (s, "The root mentions the requested run"),
        "31.1": (s, "A finished run has one endTime"),
        "32.1": (s, "A CheckValue step's object is the root"),
        "33.1": (s, "A CheckValue step's instrument is a DefinedTerm"),
        "34.1": (s, "A CheckValue step names its agent by @id"),
        "35.1": (s, "A finished CheckValue step has one endTime"),
        "36.1": (s, "A CheckValue step has an actionStatus"),
        "37.0": (s, "The root mentions a CheckValue step"),
        "38.0": (s, "The root mentions a ValidationCheck step"),
        "39.1": (s, "A ValidationCheck step's object is the root"),
        "40.1": (s, "A ValidationCheck step's instrument is the Five Safes profile"),
        "41.1": (s, "A ValidationCheck step has an actionStatus"),
        "42.1": (s, "A finished ValidationCheck step has one endTime"),
        "43.1": (s, "A finished DownloadAction has one endTime"),
        "44.1": (s, "A DownloadAction has an actionStatus"),
        "45.0": (s, "The workflow retrieval is recorded (DownloadAction)"),
        "46.0": (s, "The root mentions every DownloadAction"),
        "47.1": (s, "The requesting agent is memberOf a project"),
        "48.0": (s, "The requesting agent's affiliation is a member of the project"),
        "49.1": (s, "The requesting agent has an affiliation"),
        "50.0": (s, "A SignOff step exists and the root mentions it"),
        "51.1": (s, "A finished SignOff step has one endTime"),
        "52.0": (s, "A SignOff step's object includes the workflow and the project"),
        "52.1": (s, "A SignOff step has an actionStatus"),
        "52.2": (s, "A SignOff step has an agent"),
        "52.3": (s, "A SignOff step's instrument is a policy (CreativeWork)"),
        "52.4": (s, "A SignOff step's policy has a name"),
        "53.0": (s, "A published crate has a license"),
        "54.1": (s, "The root conformsTo the Five Safes profile"),
        "55.0": (s, "A published crate has a datePublished"),
        "56.0": (s, "A web mainEntity has a web distribution"),
        "57.1": (s, "The requested run lists its inputs (object) by @id"),
        "58.1": (s, "A DisclosureCheck step has an actionStatus"),
        "59.1": (s, "A finished DisclosureCheck step has one endTime"),
        "60.0": (s, "The root mentions a DisclosureCheck step"),
        "61.0": (s, "Each input names its FormalParameter (exampleOfWork)"),
        "62.1": (o, "A started run has one startTime"),
        "63.1": (o, "A started CheckValue step has one startTime"),
        "64.1": (o, "A started ValidationCheck step has one startTime"),
        "65.1": (o, "A DownloadAction's result is the downloaded workflow (Dataset)"),
        "66.1": (o, "A started DownloadAction has one startTime"),
        "67.1": (o, "The responsible project has funding"),
        "67.2": (o, "The responsible project has members"),
        "68.1": (o, "A started SignOff step has one RFC 3339 startTime"),
        "69.1": (o, "A started DisclosureCheck step has one startTime"),
    }
    own = {
        "ro-crate.document": (r, "The metadata file holds one JSON object"),
        "ro-crate.graph": (r, "The metadata lists its entities in a @graph list"),
        "ro-crate.entity": (r, "Every entity is a JSON object with a string @id and string @types"),
        "ro-crate.entity_type": (s, "Every entity has a @type"),
        "ro-crate.duplicate_id": (r, "No @id is listed twice"),
        "ro-crate.flattened": (r, "Entities are listed in @graph, not written inside other entities"),
        "ro-crate.nesting": (r, "The metadata is not nested too deeply and has no loops"),
        "ro-crate.context_invalid": (r, "The @context is valid JSON-LD"),
        "ro-crate.context_unknown": (s, "Every @context this validator cannot read is reported"),
        "ro-crate.jsonld_feature": (s, "Only JSON-LD features RO-Crate uses appear"),
        "ro-crate.descriptor": (r, "The metadata has a descriptor entity (ro-crate-metadata.json)"),
        "ro-crate.root": (r, "The descriptor is about exactly one Dataset, the root"),
        "5s-crate.root_id": (r, 'The root data entity\'s @id is "./"'),
        "5s-crate.outside_reference": (r, "Nothing refers to files outside the crate"),
        "5s-crate.profile": (s, "The crate declares a Five Safes profile version this portal checks"),
    }
    catalogue = {_P + key: CheckInfo(severity, title) for key, (severity, title) in profile.items()}
    catalogue.update({key: CheckInfo(severity, title) for key, (severity, title) in own.items()})
    return catalogue


#: Every check identifier :func:`validate_metadata` can report, with its severity and a short title.
CHECKS: Mapping[str, CheckInfo] = _catalogue()


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: which check, how severe, what is wrong (in plain words) and where."""

    check: str
    severity: Severity
    message: str
    entity: str | None = None
    property: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "check": self.check,
            "severity": str(self.severity),
            "message": self.message,
            "entity": self.entity,
            "property": self.property,
            "value": self.value,
        }


@dataclass
class Report:
    """The outcome of validating one crate. ``valid`` means no REQUIRED check failed.

    ``profile`` is the supported Five Safes profile the root declares (``None`` if it declares none);
    ``external_identifier`` is the bag's identifier when the crate came as a verified bag.
    """

    issues: list[Issue] = field(default_factory=list)
    profile: str | None = None
    external_identifier: str | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity is Severity.REQUIRED]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity is Severity.RECOMMENDED]

    @property
    def infos(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity is Severity.OPTIONAL]

    def failed_checks(self, severity: Severity = Severity.REQUIRED) -> set[str]:
        """Identifiers of the checks that failed at exactly ``severity``."""
        return {issue.check for issue in self.issues if issue.severity is severity}

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "profile": self.profile,
            "external_identifier": self.external_identifier,
            "errors": [issue.to_dict() for issue in self.errors],
            "warnings": [issue.to_dict() for issue in self.warnings],
            "infos": [issue.to_dict() for issue in self.infos],
        }


def validate_metadata(doc: Any) -> Report:
    """Validate a parsed ``ro-crate-metadata.json`` against the Five Safes RO-Crate profile.

    Accepts any Python value: shapes JSON-LD does not allow become issues, never exceptions. The report
    lists each failed check once per entity and problem, REQUIRED findings first.
    """
    graph = read_graph(doc)
    validation = _Validation(graph, doc)
    validation.run()
    return Report(issues=sort_issues(validation.issues), profile=validation.profile)


def sort_issues(issues: Iterable[Issue]) -> list[Issue]:
    """Issues ordered REQUIRED, RECOMMENDED, OPTIONAL, keeping the order within each severity."""
    order = {Severity.REQUIRED: 0, Severity.RECOMMENDED: 1, Severity.OPTIONAL: 2}
    return sorted(issues, key=lambda issue: order[issue.severity])


# -------------------------------------------------------------------------------------------------------
def _is_iri(term: Term) -> bool:
    return isinstance(term, Ref) and not term.blank


def _is_string(term: Term, min_length: int = 0) -> bool:
    return isinstance(term, Lit) and term.is_string and len(term.lexical) >= min_length


def _lexical(term: Term) -> str | None:
    """The string SHACL and SPARQL see for a value (``STR()``); blank nodes have none."""
    if isinstance(term, Lit):
        return term.lexical
    return None if term.blank else term.key


def _allowed_status(term: Term) -> bool:
    return isinstance(term, Lit) and term.is_string and term.lexical in vocab.ACTION_STATUSES


def _has_status(node: Node, statuses: Sequence[str]) -> bool:
    return any(isinstance(t, Lit) and t.is_string and t.lexical in statuses for t in node.values(STATUS))


def _is_web(text: str | None) -> bool:
    return text is not None and text.startswith(("http://", "https://"))


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Validation:
    """One run of every check over one graph. Each method names the check identifiers it covers."""

    def __init__(self, graph: CrateGraph, doc: Any) -> None:
        self.g = graph
        self.doc = doc
        self.issues: list[Issue] = []
        self._seen: set[tuple[str, str | None, str]] = set()
        self.profile: str | None = None
        self.roots: list[Node] = self._find_roots()
        self.root_keys = {root.key for root in self.roots}
        self.create_actions = graph.instances(schema("CreateAction"))
        self.download_actions = graph.instances(schema("DownloadAction"))
        self.agents = _distinct(t for ca in self.create_actions for t in ca.values(AGENT))
        self.projects = _distinct(t for agent in self.agents for t in graph.values(agent, schema("memberOf")))
        self.main_entities = graph.objects_of(MAIN_ENTITY)

    # -- plumbing --------------------------------------------------------------------------------------
    def emit(
        self,
        check: str,
        message: str,
        entity: str | None,
        prop: str | None = None,
        value: Term | str | None = None,
    ) -> None:
        check_id = check if check in CHECKS else _P + check
        shown = self.show(value) if isinstance(value, Ref | Lit) else value
        key = (check_id, entity, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.issues.append(Issue(check_id, CHECKS[check_id].severity, message, entity, prop, shown))

    def show(self, term: Term) -> str:
        """A value as people wrote it: the @id's own spelling, or a literal's (shortened) text."""
        return _shorten(self.g.label(term))

    def is_a(self, term: Term, cls: str) -> bool:
        return cls in self.g.types(term)

    def steps(self, additional_type: str) -> list[Node]:
        """Review steps: nodes whose additionalType is the given SHP IRI (not a string)."""
        wanted = Ref(additional_type)
        return [node for node in self.g.nodes.values() if wanted in node.values(ADDITIONAL_TYPE)]

    def run(self) -> None:
        for problem in self.g.problems:
            self.emit(problem.check, problem.message, problem.entity)
        self.metadata_file()
        self.root_entity()
        self.requested_run()
        self.requesting_agent()
        self.responsible_project()
        self.workflow_reference()
        self.timestamps()
        self.check_phase()
        self.validation_phase()
        self.retrieval_phase()
        self.sign_off_phase()
        self.disclosure_phase()
        self.publishing_phase()
        self.outputs()

    # -- metadata file and root (11.1, 12.1; ro-crate.*, 5s-crate.*) ----------------------------------
    def _find_roots(self) -> list[Node]:
        roots: dict[str, Node] = {}
        for descriptor in self._descriptors():
            for term in descriptor.values(schema("about")):
                node = self.g.node(term.key) if isinstance(term, Ref) else None
                if node is not None and schema("Dataset") in node.types:
                    roots.setdefault(node.key, node)
        return list(roots.values())

    def _descriptors(self) -> list[Node]:
        return [node for node in self.g.nodes.values() if node.key.endswith(_DESCRIPTOR_SUFFIXES)]

    def metadata_file(self) -> None:
        document = self.doc if isinstance(self.doc, Mapping) else {}
        context = document.get("@context")
        items = context if isinstance(context, list) else [context]
        if not any(isinstance(item, str) and vocab.ROCRATE_CONTEXT_RE.match(item) for item in items):
            self.emit(
                "11.1",
                "The @context must be the RO-Crate 1.2 context (or a later 1.x), e.g. "
                f'"@context": "{vocab.ROCRATE_1_2_CONTEXT}".',
                "ro-crate-metadata.json",
                "@context",
                _json_excerpt(context),
            )
        # The community profile treats ./ro-crate-metadata.json as the descriptor even when it is absent,
        # as well as any ...ro-crate-metadata.json entity that is about a Dataset.
        descriptor_keys = {BASE + "ro-crate-metadata.json"}
        descriptor_keys.update(
            d.key
            for d in self._descriptors()
            if any(self.is_a(t, schema("Dataset")) for t in d.values(schema("about")))
        )
        for key in sorted(descriptor_keys):
            node = self.g.node(key)
            label = node.label if node else "ro-crate-metadata.json"
            values = node.values(CONFORMS_TO) if node else []
            wanted = f'"conformsTo": {{"@id": "{vocab.ROCRATE_1_2}"}}'
            if not values:
                self.emit("12.1", f"The metadata descriptor needs {wanted}.", label, "conformsTo")
            for term in values:
                if not _is_iri(term) or not vocab.DESCRIPTOR_CONFORMS_RE.search(_lexical(term) or ""):
                    self.emit(
                        "12.1",
                        f"The metadata descriptor must declare RO-Crate 1.2 or later as {wanted}; "
                        f"{self.show(term)!r} is not that.",
                        label,
                        "conformsTo",
                        term,
                    )

    def root_entity(self) -> None:
        descriptors = [d for d in self._descriptors() if d.values(schema("about"))]
        if not descriptors:
            self.emit(
                "ro-crate.descriptor",
                'The metadata needs a descriptor entity: {"@id": "ro-crate-metadata.json", '
                '"@type": "CreativeWork", "about": {"@id": "./"}, "conformsTo": {"@id": '
                f'"{vocab.ROCRATE_1_2}"}}}}.',
                "ro-crate-metadata.json",
            )
        elif not self.roots:
            self.emit(
                "ro-crate.root",
                'The descriptor\'s "about" must refer to the root data entity, a Dataset with @id "./".',
                descriptors[0].label,
                "about",
            )
        elif len(self.roots) > 1:
            self.emit(
                "ro-crate.root",
                "The descriptor must be about exactly one Dataset, not "
                + ", ".join(repr(root.label) for root in self.roots)
                + ".",
                descriptors[0].label,
                "about",
            )
        for root in self.roots:
            if root.key != BASE:
                self.emit(
                    "5s-crate.root_id",
                    f'The root data entity must have @id "./" (it is {root.label!r}).',
                    root.label,
                )
            declared = [t for t in root.values(CONFORMS_TO) if _is_iri(t)]
            supported = [t.key for t in declared if t.key in vocab.SUPPORTED_PROFILES]
            if supported:
                self.profile = self.profile or supported[0]
            for term in declared:
                if (
                    term.key.startswith(vocab.FIVE_SAFES_PROFILE_PREFIX)
                    and term.key not in vocab.SUPPORTED_PROFILES
                ):
                    self.emit(
                        "5s-crate.profile",
                        f"The crate declares {term.key}; it was checked against Five Safes RO-Crate 0.4.",
                        root.label,
                        "conformsTo",
                        term,
                    )
        outside = sorted(
            {
                self.g.label(Ref(key))
                for node in self.g.nodes.values()
                for key in [
                    node.key,
                    *(t.key for values in node.props.values() for t in values if isinstance(t, Ref)),
                ]
                if key.startswith("file:") and not key.startswith(BASE)
            }
        )
        for label in outside:
            self.emit(
                "5s-crate.outside_reference",
                f"{label!r} points outside the crate; a crate may only refer to its own files or to web "
                "addresses.",
                label,
            )

    # -- requested run (1.1, 2.1, 24.0, 24.1, 25.1, 30.0, 31.1, 57.1, 61.0, 62.1) -----------------------
    def requested_run(self) -> None:
        for ca in self.create_actions:
            label = ca.label
            names = ca.values(NAME)
            if not names or any(not _is_string(t, 10) for t in names):
                self.emit(
                    "1.1",
                    f"The requested run {label!r} needs a name: a string of at least 10 characters saying "
                    'what is run, e.g. "Run cohort counts for project 81".',
                    label,
                    "name",
                    next((t for t in names if not _is_string(t, 10)), None),
                )
            self._status("2.1", ca, required=True, what=f"The requested run {label!r}")
            instruments = ca.values(INSTRUMENT)
            if not instruments:
                self.emit(
                    "24.1",
                    f"The requested run {label!r} needs an instrument: the workflow (the root's mainEntity).",
                    label,
                    "instrument",
                )
            mismatched = [i for i in instruments for m in self.main_entities if i != m]
            if mismatched:
                self.emit(
                    "24.0",
                    f"The instrument of the requested run {label!r} must be the workflow named as the root's "
                    f"mainEntity; {self.show(mismatched[0])!r} is not.",
                    label,
                    "instrument",
                    mismatched[0],
                )
            for term in ca.values(OBJECT):
                if not self.g.types(term):
                    self.emit(
                        "24.0",
                        f"The input {self.g.label(term)!r} of the requested run {label!r} must be described "
                        "as an entity with a @type in the crate.",
                        label,
                        "object",
                        term,
                    )
            objects = ca.values(OBJECT)
            if not objects or any(not _is_iri(t) for t in objects):
                self.emit(
                    "57.1",
                    f"The requested run {label!r} should list its inputs under object, each as "
                    '{"@id": ...}.',
                    label,
                    "object",
                )
            if _has_status(ca, vocab.ENDED_STATUSES):
                self._one("31.1", ca, END, f"The finished run {label!r} should have one endTime.")
            if _has_status(ca, vocab.STARTED_STATUSES):
                self._one("62.1", ca, START, f"The started run {label!r} may record one startTime.")
        for root in self.roots:
            if not any(self.is_a(t, schema("CreateAction")) for t in root.values(MENTIONS)):
                message = (
                    "The root data entity must mention the requested run (a CreateAction) under mentions."
                )
                self.emit("25.1", message, root.label, "mentions")
                self.emit("30.0", message.replace("must", "should"), root.label, "mentions")
        inputs = _distinct(t for ca in self.create_actions for t in ca.values(OBJECT))
        for term in inputs:
            parameters = self.g.values(term, schema("exampleOfWork"))
            if not any(self.is_a(p, vocab.FORMAL_PARAMETER) for p in parameters):
                self.emit(
                    "61.0",
                    f"The input {self.g.label(term)!r} should name the workflow parameter it is for with "
                    "exampleOfWork, a FormalParameter (with the RO-Crate 1.2 context).",
                    self.g.label(term),
                    "exampleOfWork",
                )

    # -- requesting agent (14.0, 15.1, 18.x, 47.1, 48.0, 49.1) ----------------------------------------------
    def requesting_agent(self) -> None:
        for ca in self.create_actions:
            agents = ca.values(AGENT)
            if not agents or any(not _is_iri(t) for t in agents):
                self.emit(
                    "18.1",
                    f"The requested run {ca.label!r} needs an agent, the requesting person, given as "
                    '{"@id": ...} of a Person entity.',
                    ca.label,
                    "agent",
                    next((t for t in agents if not _is_iri(t)), None),
                )
            for term in agents:
                if not _is_iri(term) or not self.is_a(term, schema("Person")):
                    self.emit(
                        "18.2",
                        f"The agent {self.g.label(term)!r} of the requested run must be a Person.",
                        ca.label,
                        "agent",
                        term,
                    )
                for affiliation in self.g.values(term, schema("affiliation")):
                    if not _is_iri(affiliation) or not self.is_a(affiliation, schema("Organization")):
                        self.emit(
                            "18.3",
                            f"The affiliation {self.g.label(affiliation)!r} of the requesting agent must be "
                            "an Organization entity in the crate.",
                            ca.label,
                            "affiliation",
                            affiliation,
                        )
        about_objects = self.g.objects_of(schema("about"))
        root_projects = {p for t in about_objects for p in self.g.values(t, schema("sourceOrganization"))}
        for agent in self.agents:
            label = self.g.label(agent)
            member_of = self.g.values(agent, schema("memberOf"))
            if member_of and not set(member_of) & root_projects:
                self.emit(
                    "14.0",
                    f"The requesting agent {label!r} must be a member (memberOf) of the project named as the "
                    "root's sourceOrganization.",
                    label,
                    "memberOf",
                )
            for project in member_of:
                if not self.is_a(project, schema("Project")):
                    self.emit(
                        "15.1",
                        f"The requesting agent's memberOf {self.g.label(project)!r} must be a Project "
                        "entity.",
                        label,
                        "memberOf",
                        project,
                    )
            if not member_of:
                self.emit(
                    "47.1",
                    f"The requesting agent {label!r} should be memberOf the responsible project.",
                    label,
                    "memberOf",
                )
            affiliations = self.g.values(agent, schema("affiliation"))
            if not affiliations:
                self.emit(
                    "49.1",
                    f"The requesting agent {label!r} should have an affiliation (their organisation).",
                    label,
                    "affiliation",
                )
            project_members = [m for p in member_of for m in self.g.values(p, schema("member"))]
            if self.is_a(agent, schema("Person")) and affiliations and project_members:
                if not set(affiliations) & set(project_members):
                    self.emit(
                        "48.0",
                        f"The affiliation of the requesting agent {label!r} should be one of the responsible "
                        "project's members.",
                        label,
                        "affiliation",
                    )

    # -- responsible project (16.1, 16.2, 17.1, 17.2, 67.1, 67.2) ------------------------------------------
    def responsible_project(self) -> None:
        for project in self.projects:
            label = self.g.label(project)
            for grant in self.g.values(project, schema("funding")):
                if not self.is_a(grant, schema("Grant")):
                    self.emit(
                        "16.1",
                        f"The funding {self.g.label(grant)!r} of the project {label!r} must be a Grant "
                        "entity.",
                        label,
                        "funding",
                        grant,
                    )
            members = self.g.values(project, schema("member"))
            for member in members:
                if not (self.is_a(member, schema("Organization")) or self.is_a(member, schema("Person"))):
                    self.emit(
                        "16.2",
                        f"The member {self.g.label(member)!r} of the project {label!r} must be described "
                        "as an Organization or Person entity in the crate.",
                        label,
                        "member",
                        member,
                    )
            if not self.g.values(project, schema("funding")):
                self.emit("67.1", f"The project {label!r} may name its funding (a Grant).", label, "funding")
            if not members:
                self.emit(
                    "67.2", f"The project {label!r} may list its member organisations.", label, "member"
                )
        for root in self.roots:
            sources = root.values(schema("sourceOrganization"))
            if not sources:
                self.emit(
                    "17.1",
                    "The root data entity must name the responsible project as sourceOrganization.",
                    root.label,
                    "sourceOrganization",
                )
            for term in sources:
                if not self.is_a(term, schema("Project")):
                    self.emit(
                        "17.2",
                        f"The root's sourceOrganization {self.g.label(term)!r} must be a Project entity.",
                        root.label,
                        "sourceOrganization",
                        term,
                    )

    # -- workflow reference (22.x, 23.x, 56.0) --------------------------------------------------------------
    def workflow_reference(self) -> None:
        for root in self.roots:
            mains = root.values(MAIN_ENTITY)
            if len(mains) != 1 or any(not _is_iri(t) for t in mains):
                self.emit(
                    "22.1",
                    "The root data entity must have exactly one mainEntity, the workflow, given as "
                    '{"@id": ...}.',
                    root.label,
                    "mainEntity",
                )
            for term in mains:
                if not self.is_a(term, schema("Dataset")):
                    self.emit(
                        "22.2",
                        f"The mainEntity {self.g.label(term)!r} must be a Dataset (the Workflow RO-Crate).",
                        root.label,
                        "mainEntity",
                        term,
                    )
        for term in self.main_entities:
            label = self.g.label(term)
            conforms = self.g.values(term, CONFORMS_TO)
            wanted = f'"conformsTo": {{"@id": "{vocab.WORKFLOW_RO_CRATE_1_0}"}}'
            if len(conforms) != 1:
                self.emit(
                    "23.1", f"The workflow {label!r} must have exactly one {wanted}.", label, "conformsTo"
                )
            for value in conforms:
                if not _is_iri(value) or not vocab.WORKFLOW_CRATE_RE.search(_lexical(value) or ""):
                    self.emit(
                        "23.2",
                        f"The workflow {label!r} must conform to Workflow RO-Crate, as {wanted}.",
                        label,
                        "conformsTo",
                        value,
                    )
            if _is_web(_lexical(term)):
                distributions = self.g.values(term, schema("distribution"))
                if not any(_is_web(_lexical(d)) for d in distributions):
                    self.emit(
                        "56.0",
                        f"The workflow {label!r} should give the web address of its RO-Crate ZIP as "
                        "distribution.",
                        label,
                        "distribution",
                    )

    # -- timestamps (19.1, 19.2) ----------------------------------------------------------------------------
    def timestamps(self) -> None:
        for node in self.g.nodes.values():
            for prop, check, term_name in ((END, "19.1", "endTime"), (START, "19.2", "startTime")):
                for term in node.values(prop):
                    if not vocab.RFC3339_RE.search(_lexical(term) or ""):
                        self.emit(
                            check,
                            f"{term_name} of {node.label!r} must be an RFC 3339 timestamp with a time zone, "
                            f'e.g. "2024-05-01T14:30:00Z"; {self.show(term)!r} is not.',
                            node.label,
                            term_name,
                            term,
                        )

    # -- review steps ---------------------------------------------------------------------------------------
    def check_phase(self) -> None:
        """CheckValue: 3.1, 3.2, 4.1 (REQUIRED); 32.1-37.0 (RECOMMENDED); 63.1 (OPTIONAL)."""
        steps = self.steps(vocab.CHECK_VALUE)
        for step in steps:
            what = f"The checksum step {step.label!r}"
            self._assess_action("3.1", step, what)
            self._string_names("3.2", step, what)
            self._status("4.1", step, required=False, what=what)
            self._object_is_root("32.1", step, what)
            instruments = step.values(INSTRUMENT)
            if not instruments or any(not self.is_a(t, schema("DefinedTerm")) for t in instruments):
                self.emit(
                    "33.1",
                    f"{what} should name its checksum algorithm as instrument, a DefinedTerm such as "
                    f"{vocab.SHA512_TERM}.",
                    step.label,
                    "instrument",
                )
            agents = step.values(AGENT)
            if not agents or any(not _is_iri(t) for t in agents):
                self.emit("34.1", f"{what} should name its agent by @id.", step.label, "agent")
            self._ended_and_started(step, what, "35.1", "63.1")
            if not step.values(STATUS):
                self.emit("36.1", f"{what} should have an actionStatus.", step.label, "actionStatus")
        self._root_mentions_step("37.0", vocab.CHECK_VALUE, "a checksum step (CheckValue)")

    def validation_phase(self) -> None:
        """ValidationCheck: 5.1, 5.2, 6.2 (REQUIRED); 38.0-42.1 (RECOMMENDED); 64.1 (OPTIONAL)."""
        for step in self.steps(vocab.VALIDATION_CHECK):
            what = f"The validation step {step.label!r}"
            self._assess_action("5.1", step, what)
            self._string_names("5.2", step, what)
            self._status("6.2", step, required=True, what=what)
            self._object_is_root("39.1", step, what)
            instruments = step.values(INSTRUMENT)
            if (
                not instruments
                or any(not _is_iri(t) for t in instruments)
                or not any(isinstance(t, Ref) and t.key in vocab.SUPPORTED_PROFILES for t in instruments)
            ):
                self.emit(
                    "40.1",
                    f"{what} should name the profile it validated against as instrument, "
                    f'{{"@id": "{vocab.PROFILE_0_4}"}}.',
                    step.label,
                    "instrument",
                )
            if not step.values(STATUS):
                self.emit("41.1", f"{what} should have an actionStatus.", step.label, "actionStatus")
            self._ended_and_started(step, what, "42.1", "64.1")
        self._root_mentions_step("38.0", vocab.VALIDATION_CHECK, "a validation step (ValidationCheck)")

    def retrieval_phase(self) -> None:
        """DownloadAction: 7.1-10.0 (REQUIRED); 43.1-46.0 (RECOMMENDED); 65.1, 66.1 (OPTIONAL)."""
        for action in self.download_actions:
            what = f"The workflow download {action.label!r}"
            names = action.values(NAME)
            if len(names) != 1 or any(not _is_string(t) for t in names):
                self.emit("7.1", f"{what} must have exactly one name, a string.", action.label, "name")
            self._status("8.1", action, required=False, what=what)
            self._ended_and_started(action, what, "43.1", "66.1")
            if not action.values(STATUS):
                self.emit("44.1", f"{what} should have an actionStatus.", action.label, "actionStatus")
            results = action.values(RESULT)
            if not results or any(not _is_iri(t) or not self.is_a(t, schema("Dataset")) for t in results):
                self.emit(
                    "65.1",
                    f"{what} may record the unpacked workflow as result, a Dataset entity.",
                    action.label,
                    "result",
                )
        downloaded = _distinct(
            t
            for action in self.download_actions
            for t in action.values(RESULT)
            if isinstance(t, Ref) and self.is_a(t, schema("Dataset"))
        )
        for term in downloaded:
            label = self.g.label(term)
            if not set(self.g.values(term, schema("sameAs"))) & set(self.main_entities):
                self.emit(
                    "9.0",
                    f"The downloaded workflow {label!r} must be sameAs the root's mainEntity.",
                    label,
                    "sameAs",
                )
            distributions = set(self.g.values(term, schema("distribution")))
            for action in self.download_actions:
                if not distributions & set(action.values(OBJECT)):
                    self.emit(
                        "10.0",
                        f"The distribution of the downloaded workflow {label!r} must be the address the "
                        f"download {action.label!r} fetched (its object).",
                        label,
                        "distribution",
                    )
        for root in self.roots:
            if not self.download_actions:
                self.emit(
                    "45.0",
                    "The crate should record fetching the workflow (a DownloadAction).",
                    root.label,
                )
            mentioned = set(root.values(MENTIONS))
            for action in self.download_actions:
                if Ref(action.key) not in mentioned:
                    self.emit(
                        "46.0",
                        f"The root should mention the workflow download {action.label!r}.",
                        root.label,
                        "mentions",
                    )

    def sign_off_phase(self) -> None:
        """SignOff: 20.1, 20.2, 21.1 (REQUIRED); 50.0-52.4 (RECOMMENDED); 68.1 (OPTIONAL)."""
        steps = self.steps(vocab.SIGN_OFF)
        for step in steps:
            what = f"The sign-off step {step.label!r}"
            names = step.values(NAME)
            if not names or any(not _is_string(t) for t in names):
                self.emit("20.1", f"{what} must have a name saying what was decided.", step.label, "name")
            self._assess_action("20.2", step, what)
            self._status("21.1", step, required=False, what=what)
            if _has_status(step, vocab.ENDED_STATUSES):
                self._one("51.1", step, END, f"{what} should have one endTime.")
            if _has_status(step, vocab.STARTED_STATUSES):
                starts = step.values(START)
                if len(starts) != 1 or not all(vocab.RFC3339_RE.search(_lexical(t) or "") for t in starts):
                    self.emit("68.1", f"{what} may record one startTime.", step.label, "startTime")
            if not step.values(STATUS):
                self.emit("52.1", f"{what} should have an actionStatus.", step.label, "actionStatus")
            if not step.values(AGENT):
                self.emit("52.2", f"{what} should name who signed off as agent.", step.label, "agent")
            instruments = step.values(INSTRUMENT)
            if not instruments or any(
                not _is_iri(t) or not self.is_a(t, schema("CreativeWork")) for t in instruments
            ):
                self.emit(
                    "52.3",
                    f"{what} should name the agreement policy applied as instrument, a CreativeWork.",
                    step.label,
                    "instrument",
                )
            policy_names = [n for t in instruments for n in self.g.values(t, NAME)]
            if not policy_names or any(not _is_string(t) for t in policy_names):
                self.emit(
                    "52.4",
                    f"The agreement policy used by the sign-off step {step.label!r} should have a name.",
                    step.label,
                    "instrument",
                )
            objects = set(step.values(OBJECT))
            for root in self.roots:
                for prop, what_it_is in (
                    (MAIN_ENTITY, "workflow"),
                    (schema("sourceOrganization"), "project"),
                ):
                    for term in root.values(prop):
                        if term not in objects:
                            self.emit(
                                "52.0",
                                f"{what} should list the {what_it_is} {self.g.label(term)!r} it approved "
                                "as object.",
                                step.label,
                                "object",
                                term,
                            )
        for root in self.roots:
            if not steps:
                self.emit("50.0", "The crate should record a sign-off step (SignOff).", root.label)
            mentioned = set(root.values(MENTIONS))
            for step in steps:
                if Ref(step.key) not in mentioned:
                    self.emit(
                        "50.0",
                        f"The root should mention the sign-off step {step.label!r}.",
                        root.label,
                        "mentions",
                    )

    def disclosure_phase(self) -> None:
        """DisclosureCheck: 26.1, 26.2, 27.1 (REQUIRED); 58.1-60.0 (RECOMMENDED); 69.1 (OPTIONAL)."""
        for step in self.steps(vocab.DISCLOSURE_CHECK):
            what = f"The disclosure check {step.label!r}"
            self._assess_action("26.1", step, what)
            names = step.values(NAME)
            if not names or any(not _is_string(t, 10) for t in names):
                self.emit(
                    "26.2",
                    f"{what} must have a name of at least 10 characters saying what was decided.",
                    step.label,
                    "name",
                )
            self._status("27.1", step, required=False, what=what)
            if not step.values(STATUS):
                self.emit("58.1", f"{what} should have an actionStatus.", step.label, "actionStatus")
            self._ended_and_started(step, what, "59.1", "69.1")
        disclosure = Ref(vocab.DISCLOSURE_CHECK)
        for root in self.roots:
            if not any(
                self.is_a(t, schema("AssessAction")) and disclosure in self.g.values(t, ADDITIONAL_TYPE)
                for t in root.values(MENTIONS)
            ):
                self.emit("60.0", "The root should mention a disclosure check (DisclosureCheck).", root.label)

    def publishing_phase(self) -> None:
        """13.1 (REQUIRED); 53.0, 54.1, 55.0 (RECOMMENDED)."""
        for action in self.g.instances(schema("AssessAction")):
            if not self.g.referrers(MENTIONS, action.key):
                self.emit(
                    "13.1",
                    f"The review step {action.label!r} must be mentioned from the root data entity "
                    "(mentions).",
                    action.label,
                )
        # The community profile targets "./" itself for the license advice and the root for the rest.
        top = self.g.node(BASE)
        if top is not None and top.values(schema("publisher")) and not top.values(schema("license")):
            self.emit(
                "53.0", "A published crate should state the license of its outputs.", top.label, "license"
            )
        for root in self.roots:
            if root.values(schema("publisher")) and not root.values(schema("datePublished")):
                self.emit(
                    "55.0", "A published crate should have a datePublished.", root.label, "datePublished"
                )
            declared = {t.key for t in root.values(CONFORMS_TO) if isinstance(t, Ref)}
            if not declared & set(vocab.SUPPORTED_PROFILES):
                self.emit(
                    "54.1",
                    f'The root data entity should declare "conformsTo": {{"@id": "{vocab.PROFILE_0_4}"}}.',
                    root.label,
                    "conformsTo",
                )

    def outputs(self) -> None:
        """28.1, 29.0 (RECOMMENDED)."""
        for ca in self.create_actions:
            completed = any(
                isinstance(t, Lit) and t.is_string and t.lexical == vocab.COMPLETED for t in ca.values(STATUS)
            )
            if completed and not ca.values(RESULT):
                self.emit(
                    "28.1",
                    f"The completed run {ca.label!r} should list its outputs as result.",
                    ca.label,
                    "result",
                )
        allowed = [
            schema(c) for c in ("MediaObject", "Dataset", "Collection", "DigitalDocument", "PropertyValue")
        ]
        for term in _distinct(t for ca in self.create_actions for t in ca.values(RESULT)):
            if not any(self.is_a(term, cls) for cls in allowed):
                label = self.g.label(term)
                self.emit(
                    "29.0",
                    f"The output {label!r} should be described as a File, Dataset, Collection, "
                    "DigitalDocument or PropertyValue.",
                    label,
                )

    # -- shared shapes -------------------------------------------------------------------------------------
    def _status(self, check: str, node: Node, *, required: bool, what: str) -> None:
        allowed = ", ".join(status.rsplit("/", 1)[1] for status in vocab.ACTION_STATUSES)
        values = node.values(STATUS)
        if required and not values:
            self.emit(
                check,
                f"{what} needs an actionStatus, one of {allowed} written as a string such as "
                f'"{vocab.POTENTIAL}".',
                node.label,
                "actionStatus",
            )
        for term in values:
            if not _allowed_status(term):
                self.emit(
                    check,
                    f"{what} has the actionStatus {self.show(term)!r}; it must be one of {allowed}, written "
                    f'as a string such as "{vocab.COMPLETED}" (not as {{"@id": ...}}).',
                    node.label,
                    "actionStatus",
                    term,
                )

    def _assess_action(self, check: str, node: Node, what: str) -> None:
        if schema("AssessAction") not in node.types:
            self.emit(check, f'{what} must have "@type": "AssessAction".', node.label, "@type")

    def _string_names(self, check: str, node: Node, what: str) -> None:
        if any(not _is_string(t) for t in node.values(NAME)):
            self.emit(check, f"{what} must have a human-readable name string.", node.label, "name")

    def _object_is_root(self, check: str, node: Node, what: str) -> None:
        objects = node.values(OBJECT)
        if not objects or any(not (isinstance(t, Ref) and t.key in self.root_keys) for t in objects):
            self.emit(
                check, f'{what} should have the root {{"@id": "./"}} as its object.', node.label, "object"
            )

    def _ended_and_started(self, node: Node, what: str, ended_check: str, started_check: str) -> None:
        if _has_status(node, vocab.ENDED_STATUSES):
            self._one(ended_check, node, END, f"{what} has finished and should have one endTime.")
        if _has_status(node, vocab.STARTED_STATUSES):
            self._one(started_check, node, START, f"{what} has started and may record one startTime.")

    def _one(self, check: str, node: Node, prop: str, message: str) -> None:
        if len(node.values(prop)) != 1:
            self.emit(check, message, node.label, prop.rsplit("/", 1)[1])

    def _root_mentions_step(self, check: str, additional_type: str, what: str) -> None:
        wanted = Ref(additional_type)
        for root in self.roots:
            if not any(wanted in self.g.values(t, ADDITIONAL_TYPE) for t in root.values(MENTIONS)):
                self.emit(check, f"The root should mention {what}.", root.label, "mentions")


def _distinct(terms: Iterable[Term]) -> list[Term]:
    return list(dict.fromkeys(terms))


def _json_excerpt(value: Any, limit: int = 200) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
