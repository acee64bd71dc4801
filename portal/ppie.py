"""PPIE oversight: patient and public representatives read lay summaries before TREs approve projects.

Each TRE sets `ppie_review`: *required* (its officers cannot approve a project until a PPIE member
has marked the current texts clear), *advisory* (officers see the PPIE view as evidence) or *off*.
A review holds the texts as read, so editing the lay summary or public benefit statement puts the
project back in the PPIE queue.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from portal import audit, permissions
from portal.models import TRE, Decision, Membership, PPIEReview, Project, ProjectApproval

Outcome = PPIEReview.Outcome
Policy = TRE.PPIEReview

# The state of a project's texts for PPIE, in plain words.
AWAITING = "awaiting"  # no current review
CLEAR = "clear"  # a PPIE member marked the current texts clear
PLAINER = "plainer"  # a PPIE member asked for plainer words; the texts have not changed since

STATE_LABELS = {
    AWAITING: "Waiting for a PPIE member to read it",
    CLEAR: "Cleared for the public by a PPIE member",
    PLAINER: "A PPIE member asked for plainer words",
}


def state(project):
    """(state, review): the current PPIE view of the project's texts (reads prefetched reviews)."""
    reviews = list(project.ppie_reviews.all())
    review = reviews[0] if reviews else None
    if review is None or not review.is_current():
        return AWAITING, review
    return (CLEAR if review.outcome == Outcome.CLEAR else PLAINER), review


def projects_to_review(user):
    """Projects waiting at a TRE that asks for PPIE review, with no current review; oldest request first."""
    pending = ProjectApproval.objects.filter(
        project=OuterRef("pk"),
        status=Decision.PENDING,
        tre__ppie_review__in=[Policy.REQUIRED, Policy.ADVISORY],
    )
    member = Membership.objects.filter(project=OuterRef("pk"), person=user)
    projects = (
        Project.objects.filter(Exists(pending))
        .exclude(Exists(member))
        .exclude(lead=user)
        .prefetch_related("ppie_reviews", "approvals__tre")
        .order_by("created_at")
    )
    waiting, with_researcher = [], []
    for project in projects:
        current, review = state(project)
        if current == AWAITING:
            waiting.append((project, review))
        elif current == PLAINER:
            with_researcher.append((project, review))
    return waiting, with_researcher


def record(project, outcome, comment="", *, by):
    """A PPIE member marks the project's current texts clear, or asks for plainer words."""
    comment = (comment or "").strip()
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": "Choose clear for the public, or plainer words needed."})
    if outcome == Outcome.PLAINER and not comment:
        raise ValidationError({"comment": "Say what is hard to follow; the researcher sees your comment."})
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        permissions.check_ppie_review(by, project)
        review = PPIEReview.objects.create(
            project=project,
            outcome=outcome,
            comment=comment,
            lay_summary=project.lay_summary,
            public_benefit=project.public_benefit,
            reviewer=by,
        )
        audit.record(
            f"ppie.{outcome}",
            by=by,
            obj=project,
            after={"outcome": outcome},
            message=comment,
            project=project,
        )
    return review


def view_of(project):
    """What the PPIE members said, for the project page, officers' queues and Safe Project evidence."""
    current, review = state(project)
    return {"state": current, "label": STATE_LABELS[current], "review": review}


def check_ready_for_approval(approval):
    """Refuse to approve a project at a TRE that requires PPIE review until its texts are cleared."""
    if approval.tre.ppie_review != Policy.REQUIRED:
        return
    current, _ = state(approval.project)
    if current != CLEAR:
        raise ValidationError(
            f"{approval.tre} needs a PPIE member to clear the lay summary and public benefit statement "
            f"before approval. Now: {STATE_LABELS[current].lower()}."
        )
