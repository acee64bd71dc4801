"""Safe Outputs: automated disclosure checks, independent output checkers, release file by file.

Nothing an agent returns is visible outside the TRE's checkers until the required number of
independent checkers approved it and one of them released it. A failed disclosure returns no
outputs: the published crate then carries a failed DisclosureCheck and no output files.
"""

import hashlib
import json
import mimetypes
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from crates.fivesafes import paths, writeback
from crates.fivesafes.safezip import extract_bag
from crates.models import Job, ResultUpload
from crates.services import crate_limits, portal_agent
from crates.transitions import transition
from portal import audit, permissions
from portal.errors import Refusal
from portal.models import DataAccessAgreement, Membership
from reviews import notifications, signals
from reviews.models import OutputFile, OutputVote, Publication, PublicOutput
from reviews.permissions import (
    can_check_outputs,
    can_download_output,
    check_act_as_researcher,
    check_check_outputs,
    check_publish_output,
)
from reviews.sdc import DisclosurePolicy, check_file, check_paths, redact
from reviews.sdc.tables import shape_from_csvw

S = Job.Status
Vote = OutputVote.Decision
F = OutputFile.Status


class OutputError(Refusal):
    """The output review cannot go that way; the message says why."""


# --- Policy ------------------------------------------------------------------------------------


def policy_for(job):
    """The TRE's disclosure policy with the project's agreement overrides applied."""
    policy = DisclosurePolicy.from_record(job.tre)
    agreement = (
        DataAccessAgreement.objects.filter(project=job.request.project, tre=job.tre, status="active")
        .order_by("-valid_until")
        .first()
    )
    if agreement is not None:
        if agreement.disclosure_overrides:
            policy = policy.with_overrides(agreement.disclosure_overrides)
        if agreement.permitted_output_kinds:
            policy = policy.with_overrides({"permitted_output_kinds": agreement.permitted_output_kinds})
    return policy


# --- Intake of returned results ------------------------------------------------------------------


def enqueue_output_checks(upload_id):
    from django_q.tasks import async_task

    async_task("reviews.tasks.check_outputs", upload_id, task_name=f"check-outputs-{upload_id}")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def declared_shapes(metadata):
    """Declared table shapes by output path: a CSVW `tableSchema` on the output's File entity."""
    shapes = {}
    for entity in metadata.get("@graph", []):
        if not isinstance(entity, dict) or not isinstance(entity.get("@id"), str):
            continue
        schema = entity.get("tableSchema") or entity.get("csvw:tableSchema")
        shape = shape_from_csvw(schema)
        if shape is not None:
            shapes[entity["@id"].removeprefix("./")] = shape
    return shapes


def check_outputs(upload_id):
    """Unpack a verified results crate, run the disclosure checks on each output, open the review.

    Idempotent, also when two runs overlap (a redo handed out while a slow run still works): before
    recording anything a run locks the job and checks again that it still awaits its checks, so only
    the first run to get there records the outputs and the other returns None. A run that dies
    records nothing; `redo_lost_checks` hands its work out again.
    """
    upload = ResultUpload.objects.select_related("job__tre", "job__request__project").get(pk=upload_id)
    job = upload.job
    if job.status != S.OUTPUTS_RETURNED or upload.status != ResultUpload.Status.VERIFIED:
        return None
    policy = policy_for(job)
    scratch = Path(tempfile.mkdtemp(prefix="outputs-"))
    stored = []
    try:
        archive = scratch / "results.zip"
        with upload.file.open("rb") as source, archive.open("wb") as target:
            shutil.copyfileobj(source, target, length=1024 * 1024)
        bag = extract_bag(archive, scratch / "bag", crate_limits())
        data = bag / "data"
        # Checked on upload too; a name that is unsafe now refuses the whole crate again.
        declared = [
            p for p in paths.check_declared_results(data, upload.metadata or {}).values() if p.exists()
        ]
        files = []
        for target in declared:
            if target.is_dir():
                files.extend(sorted(p for p in target.rglob("*") if p.is_file() and not p.is_symlink()))
            elif target.is_file() and not target.is_symlink():
                files.append(target)
        report = check_paths([str(f) for f in files], policy) if files else None
        results = {Path(r.path).resolve(): r for r in (report.files if report else [])}
        shapes = declared_shapes(upload.metadata or {})
        by_name = (job.workflow.output_schemas if job.workflow_id else None) or {}
        for path in files:
            # The results crate's own tableSchema first, then the approved workflow's output schema.
            shape = shapes.get(path.relative_to(data).as_posix()) or by_name.get(path.name)
            if shape is not None and path.suffix.lower() in (".csv", ".tsv", ".tab"):
                results[path.resolve()] = check_file(path, policy, display=str(path), declared=shape)
        with transaction.atomic():
            awaiting = Job.objects.select_for_update().filter(pk=job.pk, status=S.OUTPUTS_RETURNED)
            if not awaiting.values_list("pk", flat=True).first():
                return None  # another run recorded the checks first
            for path in files:
                relative = path.relative_to(data).as_posix()
                result = results.get(path.resolve())
                sdc = (
                    result.to_dict()
                    if result
                    else {"verdict": "review", "flags": [], "notes": ["Not checked."]}
                )
                output = OutputFile(
                    job=job,
                    upload=upload,
                    path=relative,
                    size=path.stat().st_size,
                    sha256=_sha256(path),
                    media_type=mimetypes.guess_type(path.name)[0] or "",
                    kind=sdc.get("kind") or "",
                    sdc=sdc,
                    sdc_verdict=sdc["verdict"],
                    policy_version=policy.version,
                    policy=policy.as_dict(),
                )
                with path.open("rb") as handle:
                    output.stored.save(path.name, File(handle), save=False)
                stored.append(output.stored)
                output.save()
            transition(
                job, S.OUTPUT_REVIEW, by=audit.SYSTEM, extra={"files": len(files), "policy": policy.version}
            )
            audit.record(
                "outputs.checked",
                by=audit.SYSTEM,
                obj=job,
                after={
                    "files": len(files),
                    "verdicts": {
                        f: r.get("verdict") for f, r in ((o.path, o.sdc) for o in job.outputs.all())
                    },
                    "policy_version": policy.version,
                },
                tre=job.tre,
                project=job.request.project,
            )
            if not files:
                _withhold(job, by=audit.SYSTEM, message="The results crate declared no output files.")
            else:
                notifications.notify(
                    notifications.checkers_of(job.tre),
                    notifications.Kind.OUTPUTS,
                    f"Outputs to check at {job.tre}: {job.request.title}",
                    f"{len(files)} file(s) returned.",
                    notifications.job_url(job),
                )
    except BaseException:
        for file in stored:  # the rows were rolled back: keep no file they named
            file.storage.delete(file.name)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return job


def check_retry_seconds():
    """How long a verified result may wait for its disclosure checks before they are handed out again:
    `PORTAL_OUTPUT_CHECK_RETRY_SECONDS`, by default the cluster's `retry` (longer than its `timeout`)."""
    return int(getattr(settings, "PORTAL_OUTPUT_CHECK_RETRY_SECONDS", settings.Q_CLUSTER.get("retry", 720)))


def redo_lost_checks(now=None):
    """Hand out again the disclosure checks of verified results that have waited too long for them.

    The checks are queued when the upload commits. The Redis broker keeps no receipt of a task it has
    handed to a cluster, so a worker or cluster killed mid-task (or a web process killed between the
    commit and the enqueue) loses the check for good. Run every minute by the lease sweep; returns
    the upload ids handed out. A redo that overlaps a slow run is harmless (see `check_outputs`).
    """
    now = now or timezone.now()
    overdue = ResultUpload.objects.filter(
        status=ResultUpload.Status.VERIFIED,
        job__status=S.OUTPUTS_RETURNED,
        job__status_changed_at__lt=now - timedelta(seconds=check_retry_seconds()),
    ).order_by("pk")
    uploads = list(overdue.values_list("pk", flat=True))
    for upload_id in uploads:
        enqueue_output_checks(upload_id)
    return uploads


# --- What each person sees of the checks ----------------------------------------------------------


def sdc_visible_to(output, user):
    """The disclosure result of `output` as `user` may see it.

    The TRE's checkers see it whole, and so does whoever the file has been released to. Everyone else
    (the researcher before release, auditors, officers) sees verdicts, rule names and cell positions,
    never the flagged values: the small counts the flags protect (reviews.sdc.redact).
    """
    if can_check_outputs(user, output.job) or can_download_output(user, output):
        return output.sdc
    return redact(output.sdc)


# --- Checkers' votes -----------------------------------------------------------------------------


def _locked(output):
    """The output file again, under its row lock (inside the caller's transaction), with its job's TRE
    and project: every action on one file starts here."""
    return (
        OutputFile.objects.select_for_update(of=("self",))
        .select_related("job__tre", "job__request__project")
        .get(pk=output.pk)
    )


def required_checkers(output):
    return int(output.policy.get("required_checkers", output.job.tre.required_output_checkers))


_STATUS_OF = {Vote.APPROVE: F.APPROVED, Vote.CHANGES: F.CHANGES, Vote.REJECT: F.REJECTED}
# Most cautious first: a file another checker would reject is not released on a split vote.
_CAUTION = (Vote.REJECT, Vote.CHANGES, Vote.APPROVE)
Settlement = OutputFile.Settlement


def settle(decisions, required, on_disagreement):
    """How a round's votes decide a file: (file status, settlement), or None while a vote is awaited.

    Agreement decides. On disagreement the TRE's policy says what happens: `reject` takes the most
    cautious decision (reject, then changes); `ask_another` waits for one more checker, after which a
    strict majority decides and, failing one, the most cautious decision stands.
    """
    if len(decisions) < required:
        return None
    if len(set(decisions)) == 1:
        return _STATUS_OF[decisions[0]], Settlement.UNANIMOUS
    cautious = next(d for d in _CAUTION if d in decisions)
    if on_disagreement != "ask_another":
        return _STATUS_OF[cautious], Settlement.CAUTIOUS
    if len(decisions) == required:
        return None
    top = max(_CAUTION, key=decisions.count)
    if decisions.count(top) * 2 > len(decisions):
        return _STATUS_OF[top], Settlement.MAJORITY
    return _STATUS_OF[cautious], Settlement.NO_MAJORITY


def votes_needed(output):
    """How many votes this round needs: one more than required while a disagreement awaits it."""
    votes = [v.decision for v in output.votes.all() if v.round == output.round]
    required = required_checkers(output)
    if output.status == F.PENDING and len(votes) >= required:
        return required + 1
    return required


def awaiting_vote(user):
    """Output files waiting for `user`'s vote across the TREs they check, oldest first.

    Separation of duties: files of projects the checker belongs to (or submitted) are left out.
    """
    tres = permissions.tres_checked_by(user)
    mine = OutputVote.objects.filter(output=OuterRef("pk"), checker=user, round=OuterRef("round"))
    member = Membership.objects.filter(project=OuterRef("job__request__project"), person=user)
    return (
        OutputFile.objects.filter(status=F.PENDING, job__status=S.OUTPUT_REVIEW, job__tre__in=tres)
        .exclude(Exists(mine))
        .exclude(Exists(member))
        .exclude(Q(job__request__submitter=user) | Q(job__request__project__lead=user))
        .select_related("job__tre", "job__request__project")
        .order_by("created_at", "pk")
    )


def votes_visible_to(output, user):
    """Checkers are blinded: they see the others' votes of a round only once every vote is in."""
    votes = [v for v in output.votes.all() if v.round == output.round]
    complete = len(votes) >= required_checkers(output)
    if complete or permissions.can_view_audit(user):
        return votes
    return [v for v in votes if v.checker_id == user.pk]


def vote(output, decision, comment="", *, for_researcher=False, by):
    comment = (comment or "").strip()
    if decision not in Vote.values:
        raise ValidationError({"decision": "Choose approve, request changes or reject."})
    if decision != Vote.APPROVE and not comment:
        raise ValidationError(
            {"comment": "Say why; the other checkers (and, if you choose, the researcher) see it."}
        )
    with transaction.atomic():
        output = _locked(output)
        job = output.job
        check_check_outputs(by, job)
        existing = output.votes.filter(checker=by, round=output.round).first()
        if existing is not None:
            if existing.decision == decision:
                return existing  # a double submission changes nothing
            raise OutputError("You have already voted on this file in this round.")
        if job.status != S.OUTPUT_REVIEW:
            raise OutputError(f"The outputs are {job.get_status_display().lower()}, not being checked.")
        if output.status != F.PENDING:
            raise OutputError(
                f"{output.name} is {output.get_status_display().lower()}; it takes no more votes."
            )
        if decision == Vote.APPROVE and output.sdc_verdict != "pass" and not comment:
            raise ValidationError(
                {
                    "comment": f"The automated checks say {output.get_sdc_verdict_display().lower()} for "
                    f"{output.name}. Write why you approve it anyway: the reason is kept with your vote and "
                    "printed on the release certificate."
                }
            )
        cast = OutputVote.objects.create(
            output=output,
            checker=by,
            round=output.round,
            decision=decision,
            comment=comment,
            for_researcher=for_researcher,
        )
        audit.record(
            f"outputs.vote.{decision}",
            by=by,
            obj=output,
            after={"round": output.round, "decision": decision, "for_researcher": for_researcher},
            message=comment,
            tre=job.tre,
            project=job.request.project,
        )
        votes = list(output.votes.filter(round=output.round))
        if len(votes) >= required_checkers(output):
            settled = settle([v.decision for v in votes], required_checkers(output), job.tre.on_disagreement)
            if settled is None:
                if len(votes) == required_checkers(output):
                    audit.record(
                        "outputs.disagreement",
                        by=audit.SYSTEM,
                        obj=output,
                        after={"round": output.round, "votes": [v.decision for v in votes]},
                        message="The checkers disagree: one more checker is asked.",
                        tre=job.tre,
                        project=job.request.project,
                    )
                    notifications.notify(
                        [
                            u
                            for u in notifications.checkers_of(job.tre)
                            if u.pk not in {v.checker_id for v in votes}
                        ],
                        notifications.Kind.OUTPUTS,
                        f"Checkers disagree on {output.name}: one more vote is needed",
                        f"{job.request.title} at {job.tre}.",
                        notifications.job_url(job),
                    )
                return cast
            status, settlement = settled
            output.status, output.settlement = status, settlement
            output.save(update_fields=["status", "settlement"])
            audit.record(
                "outputs.file_decided",
                by=audit.SYSTEM,
                obj=output,
                after={
                    "status": output.status,
                    "round": output.round,
                    "votes": [v.decision for v in votes],
                    "settlement": settlement,
                },
                tre=job.tre,
                project=job.request.project,
            )
            _after_file_decided(job)
    return cast


def _after_file_decided(job):
    outputs = list(job.outputs.all())
    if any(o.status == F.PENDING for o in outputs):
        return
    if any(o.status == F.CHANGES for o in outputs):
        transition(job, S.OUTPUT_CHANGES_REQUESTED, by=audit.SYSTEM)
        notifications.decision_made(
            job,
            f"The output checkers at {job.tre} ask for changes",
            "Open the outputs page to respond file by file.",
        )
    elif all(o.status in (F.REJECTED, F.WITHDRAWN) for o in outputs):
        _withhold(job, by=audit.SYSTEM, message="Every output was rejected or withdrawn.")
    elif all(o.status in (F.RELEASED, F.REJECTED, F.WITHDRAWN) for o in outputs):
        _publish(job)


# --- The researcher's side -----------------------------------------------------------------------


@transaction.atomic
def describe(output, *, context, justification, by):
    """The researcher's context and justification for one file (any time before it is decided)."""
    output = _locked(output)
    check_act_as_researcher(by, output.job)
    if output.status not in (F.PENDING, F.CHANGES):
        raise OutputError(f"{output.name} is already {output.get_status_display().lower()}.")
    output.researcher_context, output.researcher_justification = context.strip(), justification.strip()
    output.save(update_fields=["researcher_context", "researcher_justification"])
    audit.record(
        "outputs.described", by=by, obj=output, tre=output.job.tre, project=output.job.request.project
    )
    return output


@transaction.atomic
def respond(output, *, context, justification, by):
    """Answer a request for changes: the file goes back to the checkers for a new round."""
    output = _locked(output)
    job = output.job
    check_act_as_researcher(by, job)
    if output.status != F.CHANGES:
        raise OutputError(f"{output.name} has no request for changes to answer.")
    if not (justification or "").strip():
        raise ValidationError({"justification": "Answer the checkers' request."})
    output.researcher_context = (context or output.researcher_context).strip()
    output.researcher_justification = justification.strip()
    output.status, output.round, output.settlement = F.PENDING, output.round + 1, ""
    output.save(
        update_fields=["researcher_context", "researcher_justification", "status", "round", "settlement"]
    )
    audit.record(
        "outputs.file_responded",
        by=by,
        obj=output,
        after={"round": output.round},
        tre=job.tre,
        project=job.request.project,
    )
    if not job.outputs.filter(status=F.CHANGES).exists():
        transition(job, S.OUTPUT_REVIEW, by=by)
        notifications.notify(
            notifications.checkers_of(job.tre),
            notifications.Kind.OUTPUTS,
            f"The researcher responded: {job.request.title}",
            "",
            notifications.job_url(job),
        )
    return output


@transaction.atomic
def withdraw(output, *, by):
    output = _locked(output)
    job = output.job
    check_act_as_researcher(by, job)
    if output.status in (F.RELEASED, F.WITHDRAWN, F.REJECTED):
        raise OutputError(f"{output.name} is {output.get_status_display().lower()}.")
    output.status = F.WITHDRAWN
    output.save(update_fields=["status"])
    audit.record("outputs.file_withdrawn", by=by, obj=output, tre=job.tre, project=job.request.project)
    if job.status == S.OUTPUT_CHANGES_REQUESTED and not job.outputs.filter(status=F.CHANGES).exists():
        if job.outputs.exclude(status__in=[F.WITHDRAWN, F.REJECTED]).exists():
            transition(job, S.OUTPUT_REVIEW, by=by)
        else:
            _withhold(job, by=by, message="The researcher withdrew every output.")
    elif job.status == S.OUTPUT_REVIEW:
        _after_file_decided(job)
    return output


# --- Release --------------------------------------------------------------------------------------


@transaction.atomic
def release(output, *, by):
    """A checker releases one approved file to the project's members."""
    output = _locked(output)
    job = output.job
    check_check_outputs(by, job)
    if output.status == F.RELEASED:
        return output
    if output.status != F.APPROVED:
        raise OutputError(
            f"Only an approved file can be released; {output.name} is {output.get_status_display().lower()}."
        )
    output.status, output.released_by, output.released_at = F.RELEASED, by, timezone.now()
    output.save(update_fields=["status", "released_by", "released_at"])
    audit.record(
        "outputs.file_released",
        by=by,
        obj=output,
        after={"sha256": output.sha256, "path": output.path},
        tre=job.tre,
        project=job.request.project,
    )
    notifications.decision_made(job, f"Released: {output.name} from {job.tre}", "")
    _after_file_decided(job)
    return output


def _checkers_of_job(job):
    users = {v.checker for o in job.outputs.all() for v in o.votes.select_related("checker__profile")}
    return [
        writeback.Person(
            id=f"https://orcid.org/{u.profile.orcid}" if u.profile.orcid else f"mailto:{u.email}",
            name=u.profile.name,
        )
        for u in sorted(users, key=lambda u: u.pk)
    ] or [portal_agent()]


def _keep_only(doc, keep):
    """Drop every declared output not in `keep` (ids relative to data/) from the metadata."""
    keep = set(keep)
    graph = doc["@graph"]
    dropped = set()
    for entity in graph:
        if isinstance(entity, dict) and "CreateAction" in json.dumps(entity.get("@type")):
            results = entity.get("result") or []
            results = results if isinstance(results, list) else [results]
            kept = [r for r in results if (r.get("@id") if isinstance(r, dict) else r) in keep]
            dropped |= {(r.get("@id") if isinstance(r, dict) else r) for r in results} - keep
            if kept:
                entity["result"] = kept
            else:
                entity.pop("result", None)
    doc["@graph"] = [e for e in graph if not (isinstance(e, dict) and e.get("@id") in dropped)]
    for entity in doc["@graph"]:
        parts = entity.get("hasPart") if isinstance(entity, dict) else None
        if isinstance(parts, list):
            entity["hasPart"] = [
                p for p in parts if (p.get("@id") if isinstance(p, dict) else p) not in dropped
            ]
    return dropped


def _published_crate(job, *, approved, message, keep=()):
    """The results crate with the Disclosure and Publishing phases written in, as a new stored ZIP."""
    upload = job.result_uploads.filter(status=ResultUpload.Status.VERIFIED).get()
    scratch = Path(tempfile.mkdtemp(prefix="publish-"))
    try:
        archive = scratch / "results.zip"
        with upload.file.open("rb") as source, archive.open("wb") as target:
            shutil.copyfileobj(source, target, length=1024 * 1024)
        bag = extract_bag(archive, scratch / "bag", crate_limits())
        doc = json.loads((bag / "data" / "ro-crate-metadata.json").read_text())
        writeback.add_disclosure_check(
            doc, approved=approved, checkers=_checkers_of_job(job), message=message, checked=list(keep)
        )
        declared = paths.declared_results(doc)
        if approved:
            _keep_only(doc, keep)
        else:
            writeback.withhold_outputs(doc)
        for relative in declared:
            if relative not in keep or not approved:
                # Only inside this scratch copy of the bag: paths.remove refuses any other name.
                paths.remove(bag / "data", relative)
        writeback.add_publishing_action(
            doc,
            agent=portal_agent(),
            publisher=writeback.Organization(id=settings.FEDERATION_URL, name=settings.FEDERATION_NAME),
            license=writeback.License(
                id=settings.PORTAL_OUTPUT_LICENSE, name=settings.PORTAL_OUTPUT_LICENSE_NAME
            ),
        )
        writeback.write_metadata(bag, doc)
        out = scratch / f"published-job-{job.pk}.zip"
        writeback.pack_bag(bag, out)
        publication = Publication(job=job, approved=approved, sha256=_sha256(out))
        with out.open("rb") as handle:
            publication.stored.save(out.name, File(handle), save=False)
        publication.save()
        Job.objects.filter(pk=job.pk).update(metadata=doc)
        return publication
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _publish(job):
    released = list(job.outputs.filter(status=F.RELEASED))
    keep = []
    for output in released:
        # Keep the declared entry (a file, or the folder holding it).
        keep.append(output.path)
    declared = paths.declared_results(
        job.result_uploads.filter(status=ResultUpload.Status.VERIFIED).get().metadata or {}
    )
    keep_ids = [d for d in declared if any(k == d or k.startswith(d + "/") for k in keep)]
    publication = _published_crate(
        job, approved=True, message=f"{len(released)} file(s) released.", keep=keep_ids
    )
    transition(job, S.RELEASED, by=audit.SYSTEM, extra={"published_sha256": publication.sha256})


def _withhold(job, *, by, message):
    publication = _published_crate(job, approved=False, message=message)
    transition(job, S.WITHHELD, by=by, message=message, extra={"published_sha256": publication.sha256})
    notifications.decision_made(job, f"Outputs withheld at {job.tre}: {job.request.title}", message)


# --- Publishing on the project's public page -----------------------------------------------------


@transaction.atomic
def publish_output(output, *, title, summary="", by):
    """Show a released output on the project's public page (and in the Data Use Register's outputs)."""
    title, summary = (title or "").strip(), (summary or "").strip()
    if not title:
        raise ValidationError({"title": "Give the output a plain-language title for the public."})
    output = _locked(output)
    check_publish_output(by, output)
    project = output.job.request.project
    record, created = PublicOutput.objects.update_or_create(
        output=output,
        defaults={
            "project": project,
            "title": title,
            "summary": summary,
            "published_by": by,
            "published_at": timezone.now(),
        },
    )
    audit.record(
        "outputs.published" if created else "outputs.publication_changed",
        by=by,
        obj=output,
        after={"title": title, "summary": summary, "sha256": output.sha256},
        tre=output.job.tre,
        project=project,
    )
    signals.publication_changed.send(sender=OutputFile, output=output)
    return record


@transaction.atomic
def unpublish_output(output, *, by):
    """Take an output off the project's public page."""
    output = OutputFile.objects.select_related("job__request__project", "job__tre").get(pk=output.pk)
    check_publish_output(by, output)
    deleted, _ = PublicOutput.objects.filter(output=output).delete()
    if deleted:
        audit.record(
            "outputs.unpublished", by=by, obj=output, tre=output.job.tre, project=output.job.request.project
        )
        signals.publication_changed.send(sender=OutputFile, output=output)
