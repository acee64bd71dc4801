"""Work that the lower apps hand to transparency by signal (portal.signals, reviews.signals).

Connected by TransparencyConfig.ready().
"""

from django.db import transaction
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
