"""What the review layer adds to the "To do" page: the checker's files awaiting a vote."""

from django.utils import timezone

from portal import permissions
from portal.todo import Section
from reviews import outputs

SHOWN = 10


def checker_section(user):
    if not permissions.can_use_output_queue(user):
        return None
    waiting = outputs.awaiting_vote(user)
    files = list(waiting[: SHOWN + 1])
    return Section(
        "reviews/includes/dashboard_checker.html",
        {
            "files": files[:SHOWN],
            "more": len(files) > SHOWN,
            "count": waiting.count() if len(files) > SHOWN else len(files),
            "now": timezone.now(),
        },
    )
