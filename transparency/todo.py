"""What the transparency layer adds to the "To do" page: a PPIE member's reading and moderation."""

from portal import permissions, ppie
from portal.todo import Section
from transparency import questions


def ppie_section(user):
    if not permissions.is_ppie(user):
        return None
    waiting, with_researcher = ppie.projects_to_review(user)
    return Section(
        "public/includes/dashboard_ppie.html",
        {
            "ppie": {
                "waiting": waiting,
                "with_researcher": len(with_researcher),
                "questions": questions.questions_to_moderate(user).count(),
            }
        },
    )
