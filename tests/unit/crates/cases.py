"""Crates made by editing the community validator's reference result crate, one change each.

``REQUIRED_BREAKS`` each break one REQUIRED rule of the Five Safes profile (``breaks`` names the
check that must fail; others may fail too when rules depend on each other); ``BENIGN`` change only
the form (key order, single values vs lists, id spelling, extra entities...) and must stay valid;
``BASE_BREAKS`` break the RO-Crate essentials the profile relies on, which the community validator
reports through its inherited RO-Crate profile (``oracle_base`` names that check).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]

ROOT = "./"
RUN = "#query-37252371-c937-43bd-a0a7-3680b48c0538"
CHECK = "#check-f33fe90c-0c22-4c72-b299-de509028410e"
VALIDATE = "#validate-1146f640-819e-4c86-b029-b763a0040896"
DOWNLOAD = "#download-8b51bf57-6b29-44da-b24b-638c8df91639"
SIGNOFF = "#signoff-3b741265-cfef-49ea-8138-a2fa149bf2f0"
DISCLOSURE = "#disclosure-b16c1f0a-ae7f-4582-9b28-7d9df3313e27"
WORKFLOW = "https://workflowhub.eu/workflows/289?version=1"
DOWNLOADED = "workflow/289/"
PROJECT = "#project-be6ffb55-4f5a-4c14-b60e-47e0951090c70"
PERSON = "https://orcid.org/0000-0001-9842-9718"
MANCHESTER = "https://ror.org/027m9bs27"
DESCRIPTOR = "ro-crate-metadata.json"


@dataclass(frozen=True)
class Case:
    name: str
    edit: Callable[[Doc], None]
    breaks: str | None = None
    oracle_base: str | None = None

    def apply(self, doc: Doc) -> Doc:
        edited = copy.deepcopy(doc)
        self.edit(edited)
        return edited


def entity(doc: Doc, identifier: str) -> dict[str, Any]:
    return next(e for e in doc["@graph"] if e.get("@id") == identifier)


def _set(identifier: str, key: str, value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        entity(doc, identifier)[key] = value

    return edit


def _drop(identifier: str, key: str) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        del entity(doc, identifier)[key]

    return edit


def _unmention(identifier: str) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        entity(doc, ROOT)["mentions"].remove({"@id": identifier})

    return edit


def _add(*entities: dict[str, Any]) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        doc["@graph"].extend(copy.deepcopy(list(entities)))

    return edit


def _chain(*edits: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for step in edits:
            step(doc)

    return edit


P = "five-safes-crate-0.4_"

REQUIRED_BREAKS = [
    Case("run-name-too-short", _set(RUN, "name", "Run query"), P + "1.1"),
    Case("run-name-missing", _drop(RUN, "name"), P + "1.1"),
    Case("run-status-missing", _drop(RUN, "actionStatus"), P + "2.1"),
    Case(
        "run-status-as-iri",
        _set(RUN, "actionStatus", {"@id": "http://schema.org/CompletedActionStatus"}),
        P + "2.1",
    ),
    Case("check-not-assess-action", _set(CHECK, "@type", "Action"), P + "3.1"),
    Case("check-name-not-string", _set(CHECK, "name", 42), P + "3.2"),
    Case("check-status-unknown", _set(CHECK, "actionStatus", "done"), P + "4.1"),
    Case("validation-not-assess-action", _set(VALIDATE, "@type", "CheckAction"), P + "5.1"),
    Case(
        "validation-name-language-tagged",
        _set(VALIDATE, "name", {"@value": "Validation: approved", "@language": "en"}),
        P + "5.2",
    ),
    Case("validation-status-missing", _drop(VALIDATE, "actionStatus"), P + "6.2"),
    Case("validation-status-unknown", _set(VALIDATE, "actionStatus", "approved"), P + "6.2"),
    Case("download-name-missing", _drop(DOWNLOAD, "name"), P + "7.1"),
    Case(
        "download-two-names", _set(DOWNLOAD, "name", ["Downloaded workflow", "Fetched workflow"]), P + "7.1"
    ),
    Case("download-status-unknown", _set(DOWNLOAD, "actionStatus", "http://schema.org/Done"), P + "8.1"),
    Case("downloaded-workflow-not-same-as", _drop(DOWNLOADED, "sameAs"), P + "9.0"),
    Case(
        "downloaded-workflow-other-distribution",
        _set(DOWNLOADED, "distribution", {"@id": "https://example.org/elsewhere.zip"}),
        P + "10.0",
    ),
    Case(
        "context-1.1",
        lambda doc: doc.update({"@context": "https://w3id.org/ro/crate/1.1/context"}),
        P + "11.1",
    ),
    Case("context-missing", lambda doc: doc.pop("@context"), P + "11.1"),
    Case(
        "descriptor-conforms-1.1",
        _set(DESCRIPTOR, "conformsTo", {"@id": "https://w3id.org/ro/crate/1.1"}),
        P + "12.1",
    ),
    Case(
        "descriptor-conforms-string",
        _set(DESCRIPTOR, "conformsTo", "https://w3id.org/ro/crate/1.2"),
        P + "12.1",
    ),
    Case("sign-off-unmentioned", _unmention(SIGNOFF), P + "13.1"),
    Case(
        "agent-in-another-project",
        _chain(
            _add({"@id": "#project-other", "@type": "Project", "name": "Another project"}),
            _set(PERSON, "memberOf", {"@id": "#project-other"}),
        ),
        P + "14.0",
    ),
    Case(
        "agent-member-of-organization",
        _set(PERSON, "memberOf", [{"@id": PROJECT}, {"@id": MANCHESTER}]),
        P + "15.1",
    ),
    Case("project-funding-not-grant", _set(PROJECT, "funding", {"@id": MANCHESTER}), P + "16.1"),
    Case(
        "project-member-undescribed",
        _set(PROJECT, "member", [{"@id": MANCHESTER}, {"@id": "https://ror.org/00000none"}]),
        P + "16.2",
    ),
    Case("root-source-organization-missing", _drop(ROOT, "sourceOrganization"), P + "17.1"),
    Case(
        "root-source-organization-not-project",
        _set(ROOT, "sourceOrganization", {"@id": MANCHESTER}),
        P + "17.2",
    ),
    Case("run-agent-missing", _drop(RUN, "agent"), P + "18.1"),
    Case(
        "run-agent-blank-node",
        _chain(_set(PERSON, "@id", "_:requester"), _set(RUN, "agent", {"@id": "_:requester"})),
        P + "18.1",
    ),
    Case("run-agent-organization", _set(RUN, "agent", {"@id": MANCHESTER}), P + "18.2"),
    Case("agent-affiliation-not-organization", _set(PERSON, "affiliation", {"@id": PROJECT}), P + "18.3"),
    Case("end-time-date-only", _set(RUN, "endTime", "2023-04-19"), P + "19.1"),
    Case("start-time-without-zone", _set(CHECK, "startTime", "2023-04-18T12:11:00"), P + "19.2"),
    Case("sign-off-name-missing", _drop(SIGNOFF, "name"), P + "20.1"),
    Case("sign-off-not-assess-action", _set(SIGNOFF, "@type", "ReviewAction"), P + "20.2"),
    Case("sign-off-status-unknown", _set(SIGNOFF, "actionStatus", "approved"), P + "21.1"),
    Case("main-entity-missing", _drop(ROOT, "mainEntity"), P + "22.1"),
    Case("main-entity-twice", _set(ROOT, "mainEntity", [{"@id": WORKFLOW}, {"@id": DOWNLOADED}]), P + "22.1"),
    Case("main-entity-string", _set(ROOT, "mainEntity", WORKFLOW), P + "22.1"),
    Case("main-entity-not-dataset", _set(WORKFLOW, "@type", "SoftwareSourceCode"), P + "22.2"),
    Case("workflow-conforms-to-missing", _drop(WORKFLOW, "conformsTo"), P + "23.1"),
    Case(
        "workflow-conforms-to-other",
        _set(WORKFLOW, "conformsTo", {"@id": "https://w3id.org/ro/crate/1.2"}),
        P + "23.2",
    ),
    Case(
        "run-instrument-other",
        _set(RUN, "instrument", {"@id": "https://workflowhub.eu/workflows/1?version=2"}),
        P + "24.0",
    ),
    Case(
        "run-input-undescribed",
        _set(RUN, "object", [{"@id": "input1.txt"}, {"@id": "#not-described"}]),
        P + "24.0",
    ),
    Case("run-instrument-missing", _drop(RUN, "instrument"), P + "24.1"),
    Case("root-does-not-mention-run", _unmention(RUN), P + "25.1"),
    Case("disclosure-not-assess-action", _set(DISCLOSURE, "@type", "Action"), P + "26.1"),
    Case("disclosure-name-too-short", _set(DISCLOSURE, "name", "Approved"), P + "26.2"),
    Case(
        "disclosure-status-unknown",
        _set(DISCLOSURE, "actionStatus", "http://schema.org/Approved"),
        P + "27.1",
    ),
]


def _reverse_keys(doc: Doc) -> None:
    doc["@graph"] = [dict(reversed(list(e.items()))) for e in reversed(doc["@graph"])]


def _singletons_to_values(doc: Doc) -> None:
    for e in doc["@graph"]:
        for key, value in list(e.items()):
            if isinstance(value, list) and len(value) == 1:
                e[key] = value[0]


def _values_to_lists(doc: Doc) -> None:
    for e in doc["@graph"]:
        for key, value in list(e.items()):
            if not key.startswith("@") and not isinstance(value, list):
                e[key] = [value]


def _dot_slash_ids(doc: Doc) -> None:
    def respell(value: Any) -> Any:
        if isinstance(value, dict) and value.get("@id", "").startswith("#"):
            return {**value, "@id": "./" + value["@id"]}
        if isinstance(value, list):
            return [respell(v) for v in value]
        return value

    for e in doc["@graph"]:
        for key, value in list(e.items()):
            if key != "@id":
                e[key] = respell(value)


def _compact_and_full_iris(doc: Doc) -> None:
    workflow = entity(doc, WORKFLOW)
    workflow["dct:conformsTo"] = workflow.pop("conformsTo")
    run = entity(doc, RUN)
    run["http://schema.org/name"] = run.pop("name")
    run["schema:agent"] = run.pop("agent")
    entity(doc, CHECK)["@type"] = "schema:AssessAction"


BENIGN = [
    Case("keys-and-entities-reordered", _reverse_keys),
    Case("single-element-lists-as-values", _singletons_to_values),
    Case("values-as-single-element-lists", _values_to_lists),
    Case("ids-spelled-with-dot-slash", _dot_slash_ids),
    Case("compact-and-full-iri-keys", _compact_and_full_iris),
    Case(
        "extra-entities-and-properties",
        _chain(
            _add(
                {
                    "@id": "https://doi.org/10.5281/zenodo.10376350",
                    "@type": "ScholarlyArticle",
                    "name": "Five Safes RO-Crate",
                },
                {"@id": "#place", "@type": "Place", "name": "Manchester"},
            ),
            _set(ROOT, "citation", {"@id": "https://doi.org/10.5281/zenodo.10376350"}),
            _set(ROOT, "keywords", ["five safes", "TRE"]),
        ),
    ),
    Case(
        "extra-types",
        _chain(
            _set(ROOT, "@type", ["Dataset", "RepositoryCollection"]),
            _set(PERSON, "@type", ["Person", "Researcher"]),
        ),
    ),
    Case(
        "context-with-inline-terms",
        lambda doc: doc.update(
            {"@context": ["https://w3id.org/ro/crate/1.2/context", {"local": "https://example.org/terms#"}]}
        ),
    ),
    Case(
        "ro-crate-1.3",
        _chain(
            lambda doc: doc.update({"@context": "https://w3id.org/ro/crate/1.3/context"}),
            _set(DESCRIPTOR, "conformsTo", {"@id": "https://w3id.org/ro/crate/1.3"}),
        ),
    ),
    Case("check-mentioned-only-by-the-run", _chain(_unmention(CHECK), _set(RUN, "mentions", {"@id": CHECK}))),
    Case(
        "run-failed-without-results",
        _chain(_set(RUN, "actionStatus", "http://schema.org/FailedActionStatus"), _drop(RUN, "result")),
    ),
    Case(
        "timestamps-with-fractions-and-z",
        _chain(
            _set(RUN, "startTime", "2023-04-18T11:12:00.125Z"), _set(RUN, "endTime", "2023-04-19t15:59:59,5z")
        ),
    ),
]


def _no_graph(doc: Doc) -> None:
    root = entity(doc, ROOT)
    doc.pop("@graph")
    doc.update(root)


def _embedded_agent(doc: Doc) -> None:
    person = entity(doc, PERSON)
    doc["@graph"].remove(person)
    entity(doc, RUN)["agent"] = person


BASE_BREAKS = [
    Case(
        "descriptor-missing",
        lambda doc: doc["@graph"].remove(entity(doc, DESCRIPTOR)),
        "ro-crate.descriptor",
        "RO-Crate Metadata File Descriptor entity existence",
    ),
    Case(
        "descriptor-without-about",
        _drop(DESCRIPTOR, "about"),
        "ro-crate.descriptor",
        "Metadata File Descriptor entity: `about` property",
    ),
    Case("root-not-a-dataset", _set(ROOT, "@type", "CreativeWork"), "ro-crate.root", "Root Data Entity type"),
    Case("graph-missing", _no_graph, "ro-crate.graph", "RO-Crate Metadata File Descriptor entity existence"),
    Case(
        "entity-embedded", _embedded_agent, "ro-crate.flattened", "File Descriptor JSON-LD must be flattened"
    ),
]

ALL_CASES = [*REQUIRED_BREAKS, *BENIGN, *BASE_BREAKS]
