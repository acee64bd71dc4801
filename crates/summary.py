"""What a Five Safes crate asks for, read from its JSON-LD: who, which project, workflow, inputs, data.

Works on the received JSON-LD directly (never round-tripped through ro-crate-py) and never
raises on odd shapes: anything it cannot read is simply absent from the summary, since the
profile validator is what reports malformed crates.
"""

import re
from urllib.parse import parse_qs, urlparse

ORCID_RE = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _types(entity):
    return set(_as_list(entity.get("@type")))


def _id_of(value):
    if isinstance(value, dict):
        return value.get("@id")
    return value if isinstance(value, str) else None


def _text(value):
    if isinstance(value, dict):
        return value.get("@value") or value.get("@id") or ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


class Graph:
    """Entities of a flattened RO-Crate graph, by @id."""

    def __init__(self, doc):
        graph = doc.get("@graph") if isinstance(doc, dict) else None
        self.entities = {}
        for entity in graph if isinstance(graph, list) else []:
            if isinstance(entity, dict) and isinstance(entity.get("@id"), str):
                self.entities.setdefault(entity["@id"], entity)

    def get(self, ref):
        return self.entities.get(_id_of(ref) or "", {})

    def refs(self, entity, key):
        return [self.get(ref) for ref in _as_list(entity.get(key)) if _id_of(ref)]

    @property
    def root(self):
        descriptor = self.entities.get("ro-crate-metadata.json", {})
        return self.get(descriptor.get("about")) or self.entities.get("./", {})

    def requested_run(self):
        """The CreateAction mentioned from the root (the requested workflow run)."""
        for entity in self.refs(self.root, "mentions"):
            if "CreateAction" in _types(entity):
                return entity
        return next((e for e in self.entities.values() if "CreateAction" in _types(e)), {})


def orcid_of(person):
    for candidate in [person.get("@id"), *(_text(i) for i in _as_list(person.get("identifier")))]:
        match = ORCID_RE.search(candidate or "")
        if match:
            return match.group(1)
    return ""


def workflow_version(workflow):
    if workflow.get("version"):
        return _text(workflow["version"])
    query = parse_qs(urlparse(workflow.get("@id", "")).query)
    return query.get("version", [""])[0]


def workflow_base_id(workflow_id):
    """The workflow id without its version query, e.g. https://workflowhub.eu/workflows/289."""
    parsed = urlparse(workflow_id or "")
    return parsed._replace(query="", fragment="").geturl() if parsed.scheme else workflow_id or ""


def summarise(doc):
    """A plain dict of what the crate names, for review pages, version diffs and cross-checks."""
    graph = Graph(doc)
    root = graph.root
    run = graph.requested_run()
    workflow = graph.get(root.get("mainEntity")) or graph.get(run.get("instrument"))
    distribution = graph.get(workflow.get("distribution"))
    project = graph.get(root.get("sourceOrganization"))
    people = []
    for person in graph.refs(run, "agent"):
        people.append(
            {
                "id": person.get("@id", ""),
                "name": _text(person.get("name")),
                "orcid": orcid_of(person),
                "affiliation": ", ".join(_text(o.get("name")) for o in graph.refs(person, "affiliation")),
                "member_of": [r.get("@id", "") for r in graph.refs(person, "memberOf")],
            }
        )
    inputs, datasets = [], []
    for item in graph.refs(run, "object"):
        types = _types(item)
        entry = {
            "id": item.get("@id", ""),
            "name": _text(item.get("name")) or item.get("@id", ""),
            "type": ", ".join(sorted(types)),
        }
        if "PropertyValue" in types:
            entry["value"] = _text(item.get("value"))
        if "Dataset" in types and item.get("@id") != workflow.get("@id"):
            identifier = (
                item.get("identifier") if isinstance(item.get("identifier"), str) else item.get("@id", "")
            )
            datasets.append({"id": identifier, "name": entry["name"]})
        else:
            inputs.append(entry)
    # Datasets may also be named from the root (the portal's own builder does this).
    named = {d["id"] for d in datasets}
    for entity in graph.refs(root, "mentions"):
        if "Dataset" in _types(entity) and entity.get("@id") != workflow.get("@id"):
            identifier = (
                entity.get("identifier")
                if isinstance(entity.get("identifier"), str)
                else entity.get("@id", "")
            )
            if identifier not in named:
                datasets.append({"id": identifier, "name": _text(entity.get("name")) or identifier})
                named.add(identifier)
    identifiers = []
    for ident in _as_list(project.get("identifier")):
        entity = graph.get(ident) if _id_of(ident) else {}
        if entity:
            identifiers.append({"name": _text(entity.get("name")), "value": _text(entity.get("value"))})
        elif isinstance(ident, str):
            identifiers.append({"name": "", "value": ident})
    return {
        "title": _text(root.get("name")),
        "profile": [_id_of(c) for c in _as_list(root.get("conformsTo")) if _id_of(c)],
        "workflow": {
            "id": workflow.get("@id", ""),
            "base_id": workflow_base_id(workflow.get("@id", "")),
            "name": _text(workflow.get("name")),
            "version": workflow_version(workflow),
            "sha256": _text(workflow.get("sha256") or distribution.get("sha256")),
        },
        "project": {
            "id": project.get("@id", ""),
            "name": _text(project.get("name")),
            "identifiers": identifiers,
        },
        "people": people,
        "inputs": inputs,
        "datasets": datasets,
        "action_status": _text(run.get("actionStatus")),
    }


def diff(old, new):
    """What changed between two summaries, by section, as plain sentences."""
    changes = []
    if (old or {}).get("workflow") != (new or {}).get("workflow"):
        o, n = (old or {}).get("workflow", {}), (new or {}).get("workflow", {})
        changes.append(
            (
                "workflow",
                f"Workflow changed from {o.get('name') or o.get('id')} {o.get('version', '')} "
                f"to {n.get('name') or n.get('id')} {n.get('version', '')}".strip(),
            )
        )
    for section, key, label in (
        ("people", "orcid", "Person"),
        ("inputs", "name", "Input"),
        ("datasets", "id", "Dataset"),
    ):
        before = {
            (item.get(key) or item.get("id") or item.get("name")): item
            for item in (old or {}).get(section, [])
        }
        after = {
            (item.get(key) or item.get("id") or item.get("name")): item
            for item in (new or {}).get(section, [])
        }
        for ident in after.keys() - before.keys():
            changes.append((section, f"{label} added: {after[ident].get('name') or ident}"))
        for ident in before.keys() - after.keys():
            changes.append((section, f"{label} removed: {before[ident].get('name') or ident}"))
        for ident in before.keys() & after.keys():
            if before[ident] != after[ident]:
                old_sum, new_sum = before[ident].get("checksum"), after[ident].get("checksum")
                if section == "inputs" and old_sum and new_sum and old_sum != new_sum:
                    changes.append(
                        (
                            section,
                            f"{label} {after[ident].get('name')}: the file {after[ident].get('file') or ident} "
                            f"has different contents (checksum {_short(old_sum)} before, {_short(new_sum)} now)",
                        )
                    )
                elif section == "inputs" and before[ident].get("value") != after[ident].get("value"):
                    changes.append(
                        (
                            section,
                            f"{label} {after[ident].get('name')} changed from "
                            f"{before[ident].get('value')!r} to {after[ident].get('value')!r}",
                        )
                    )
                else:
                    changes.append((section, f"{label} changed: {after[ident].get('name') or ident}"))
    if (old or {}).get("project") != (new or {}).get("project"):
        changes.append(("project", "The project named in the crate changed"))
    return changes


def _short(checksum):
    """'sha512:1a2b3c4d5e6f' for people: the algorithm and the first twelve hex digits."""
    algorithm, _, digest = checksum.partition(":")
    return f"{algorithm}:{digest[:12]}" if digest else checksum[:12]
