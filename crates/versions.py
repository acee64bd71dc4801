"""Versions of a request: what the builder refills from the last one, file checksums for the diff,
and the check of a crate's inputs against what its workflow declares.

A resubmission after "changes requested" is built again from the last version: its workflow,
datasets and input values are the form's starting point, and its input files are kept (read from the
stored crate ZIP) unless the researcher replaces them. File inputs are compared between versions by
the SHA-512 the BagIt manifest records for them (verified at intake), not only by name.
"""

import zipfile
from pathlib import Path, PurePosixPath

from django.core.exceptions import ValidationError

from portal import workflow_inputs
from portal.models import ApprovedWorkflow, Dataset

_MANIFEST_NAMES = ("manifest-sha512.txt", "manifest-sha256.txt")


def _bag_root(archive):
    """The bag directory's name inside the ZIP (its one top-level folder), '' if flat."""
    tops = {PurePosixPath(name).parts[0] for name in archive.namelist() if name.strip("/")}
    return tops.pop() + "/" if len(tops) == 1 else ""


def manifest_digests(zip_path):
    """{path in the crate (under data/): 'sha512:<hex>'} from the bag's payload manifest."""
    digests = {}
    with zipfile.ZipFile(zip_path) as archive:
        root = _bag_root(archive)
        names = set(archive.namelist())
        for manifest in _MANIFEST_NAMES:
            if root + manifest not in names:
                continue
            algorithm = manifest.removeprefix("manifest-").removesuffix(".txt")
            for line in archive.read(root + manifest).decode("utf-8", "replace").splitlines():
                digest, _, path = line.strip().partition(" ")
                path = path.strip()
                if path.startswith("data/"):
                    digests.setdefault(path.removeprefix("data/"), f"{algorithm}:{digest.lower()}")
            break
    return digests


def add_checksums(summary, digests):
    """Note each file input's checksum (and file name) in a version summary, in place."""
    for item in summary.get("inputs", []):
        checksum = digests.get(item.get("id", ""))
        if checksum:
            item["checksum"] = checksum
            item["file"] = PurePosixPath(item["id"]).name
    return summary


def base_version(req):
    """The version a resubmission starts from: the newest one that passed its checks."""
    return req.versions.filter(summary__isnull=False).order_by("-number").first()


def _workflow_of(version):
    pk = (version.crosscheck or {}).get("workflow_pk")
    return ApprovedWorkflow.objects.filter(pk=pk).first() if pk else None


def prefill(req, version):
    """(initial form values, kept files {input name: file name}) from a version, for the builder."""
    summary = version.summary or {}
    workflow = _workflow_of(version)
    initial = {
        "project": req.project_id,
        "tres": list(req.tres.values_list("pk", flat=True)),
        "title": req.title,
        "description": req.description,
        "workflow": workflow.pk if workflow else None,
    }
    identifiers = [d.get("id") for d in summary.get("datasets", [])]
    initial["datasets"] = list(
        Dataset.objects.filter(identifier__in=identifiers).values_list("pk", flat=True)
    )
    values = {i["name"]: i["value"] for i in summary.get("inputs", []) if "value" in i}
    kept = {i["name"]: PurePosixPath(i["id"]).name for i in summary.get("inputs", []) if "value" not in i}
    declared = workflow.inputs if workflow else None
    if declared is not None:
        for entry in declared:
            if entry["name"] in values:
                value = values[entry["name"]]
                initial[f"input_{entry['name']}"] = (
                    value.lower() if entry["type"] == "boolean" and isinstance(value, str) else value
                )
        kept = {name: filename for name, filename in kept.items() if name in {e["name"] for e in declared}}
    else:
        initial["parameters"] = "\n".join(f"{name}={value}" for name, value in values.items())
    return initial, kept


def extract_kept(version, names, scratch):
    """Copy the named file inputs of a version's stored crate into `scratch`; [(input name, path)]."""
    wanted = {
        i["name"]: i["id"] for i in (version.summary or {}).get("inputs", []) if i.get("name") in set(names)
    }
    if not wanted:
        return []
    if not version.crate:
        raise ValidationError("The last version's files were not kept: attach them again.")
    kept = []
    out = Path(scratch) / "kept"
    out.mkdir(parents=True, exist_ok=True)
    with version.crate.open("rb") as stored, zipfile.ZipFile(stored) as archive:
        root = _bag_root(archive)
        for name, crate_path in sorted(wanted.items()):
            member = f"{root}data/{crate_path}"
            # Only our own name is written: the path inside the crate chooses nothing on disk.
            target = out / name / PurePosixPath(crate_path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, target.open("wb") as handle:
                    for chunk in iter(lambda s=source: s.read(1024 * 1024), b""):
                        handle.write(chunk)
            except KeyError:
                raise ValidationError(f"The last version has no file for {name}: attach it again.") from None
            kept.append((name, target))
    return kept


def input_problems(summary, workflow):
    """What is wrong with a crate's inputs for a workflow that declares them, as sentences ([] if fine)."""
    if workflow is None or workflow.inputs is None:
        return []
    values, files = {}, []
    for item in summary.get("inputs", []):
        if "value" in item:
            values[item["name"]] = item["value"]
        else:
            files.append(item["name"])
    try:
        workflow_inputs.check(workflow.inputs, values, files, workflow_name=str(workflow))
    except ValidationError as exc:
        return [message for messages in exc.message_dict.values() for message in messages]
    return []
