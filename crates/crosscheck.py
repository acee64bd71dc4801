"""Registry cross-checks: the people, project, datasets and workflow a crate names, matched to records.

This is evidence for reviewers, not a gate: each finding says plainly what matched and what did not.
"""

from dataclasses import asdict, dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q

from portal.models import ApprovedWorkflow, Dataset, Decision


@dataclass
class Finding:
    check: str
    ok: bool
    message: str
    tre: str = ""


def crosscheck(summary, request):
    """Findings for a version's summary against the registry and the request's project and TREs."""
    findings = []
    project = request.project
    tres = list(request.tres.all())

    # People: each requesting agent is a known person (by ORCID) and a member of the project.
    orcids = [p["orcid"] for p in summary.get("people", []) if p.get("orcid")]
    users = {
        u.profile.orcid: u
        for u in get_user_model().objects.filter(profile__orcid__in=orcids).select_related("profile")
    }
    members = set(project.memberships.values_list("person_id", flat=True))
    if not summary.get("people"):
        findings.append(Finding("people", False, "The crate names no requesting person."))
    for person in summary.get("people", []):
        label = person.get("name") or person.get("id")
        if not person.get("orcid"):
            findings.append(
                Finding("people", False, f"{label} is named without an ORCID iD, so cannot be matched.")
            )
            continue
        user = users.get(person["orcid"])
        if user is None:
            findings.append(
                Finding("people", False, f"{label} ({person['orcid']}) has no account in the registry.")
            )
        elif user.pk not in members:
            findings.append(Finding("people", False, f"{label} is not a member of {project.identifier}."))
        else:
            findings.append(
                Finding("people", True, f"{label} is {user.email}, a member of {project.identifier}.")
            )

    # Project: the crate's project carries the registry's identifier.
    values = {i.get("value") for i in summary.get("project", {}).get("identifiers", [])}
    if project.identifier in values or project.identifier in summary.get("project", {}).get("id", ""):
        findings.append(Finding("project", True, f"The crate's project is {project.identifier}."))
    else:
        named = summary.get("project", {}).get("name") or "no project"
        findings.append(
            Finding(
                "project", False, f"The crate names {named}, without the identifier {project.identifier}."
            )
        )

    # Datasets: each is held by a target TRE.
    identifiers = [d["id"] for d in summary.get("datasets", [])]
    held = {}
    for dataset in Dataset.objects.filter(identifier__in=identifiers, tre__in=tres).select_related("tre"):
        held.setdefault(dataset.identifier, []).append(dataset.tre.slug)
    for dataset in summary.get("datasets", []):
        where = held.get(dataset["id"])
        if where:
            findings.append(
                Finding("datasets", True, f"{dataset['name']} is held by {', '.join(sorted(where))}.")
            )
        else:
            findings.append(Finding("datasets", False, f"{dataset['name']} is not held by any target TRE."))

    # Workflow: registered at this id and version, approved per TRE, checksum when declared.
    wf = summary.get("workflow", {})
    workflow = (
        ApprovedWorkflow.objects.filter(Q(workflow_id=wf.get("id")) | Q(workflow_id=wf.get("base_id")))
        .filter(version=wf.get("version") or "")
        .prefetch_related("approvals")
        .first()
    )
    if workflow is None:
        findings.append(
            Finding(
                "workflow",
                False,
                f"Workflow {wf.get('id') or '(none)'} version {wf.get('version') or '?'} is not registered.",
            )
        )
    else:
        approved_at = {a.tre_id for a in workflow.approvals.all() if a.status == Decision.APPROVED}
        for tre in tres:
            ok = tre.pk in approved_at
            findings.append(
                Finding(
                    "workflow",
                    ok,
                    f"{workflow} is {'on' if ok else 'not on'} {tre}'s approved list.",
                    tre=tre.slug,
                )
            )
        if wf.get("sha256"):
            ok = wf["sha256"].lower() == workflow.sha256
            findings.append(
                Finding(
                    "workflow",
                    ok,
                    "The crate's workflow checksum matches the approved crate."
                    if ok
                    else f"The crate declares checksum {wf['sha256']}, but the approved crate's is {workflow.sha256}.",
                )
            )
    return {"findings": [asdict(f) for f in findings], "workflow_pk": workflow.pk if workflow else None}
