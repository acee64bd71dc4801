"""Work that the lower apps hand to transparency by signal (portal.signals, reviews.signals).

Connected by TransparencyConfig.ready().
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portal import signals as portal_signals
from reviews import signals as review_signals
from transparency import dur, page_cache


@receiver(portal_signals.project_approved, dispatch_uid="transparency.project_approved")
def refuse_an_incomplete_register_entry(sender, project, **kwargs):
    """The Data Use Register's required fields must be complete before a TRE approves the project."""
    dur.check_dur_ready(project)


@receiver(review_signals.publication_changed, dispatch_uid="transparency.publication_changed")
def show_the_published_output(sender, **kwargs):
    transaction.on_commit(page_cache.invalidate_public_pages)


# --- Public pages fresh within seconds ------------------------------------------------------------
# The public pages are cached whole (transparency.views); a change to anything they show retires every
# cached page once the change commits, so the cache lifetime is only a safety net.


def _retire_public_pages(sender, **kwargs):
    transaction.on_commit(page_cache.invalidate_public_pages)


def connect_public_page_sources():
    from crates.models import Job, Request
    from portal.models import TRE, DataAccessAgreement, Dataset, Project, ProjectApproval
    from reviews.models import PublicOutput, StepDecision

    for model in (
        Job,
        Request,
        StepDecision,
        Project,
        ProjectApproval,
        DataAccessAgreement,
        Dataset,
        TRE,
        PublicOutput,
    ):
        uid = f"transparency.retire_public_pages.{model._meta.label_lower}"
        post_save.connect(_retire_public_pages, sender=model, dispatch_uid=f"{uid}.save")
        post_delete.connect(_retire_public_pages, sender=model, dispatch_uid=f"{uid}.delete")


connect_public_page_sources()
