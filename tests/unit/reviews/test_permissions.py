"""Who may do what on a job, as a table: every question in reviews.permissions and crates.permissions
against the cast (alice submits for bob's project at TRE A; olivia governs and cam checks outputs at
TRE A; oscar governs TRE B; audrey audits; pat is a PPIE member)."""

import pytest
from django.contrib.auth.models import AnonymousUser

from crates import permissions as crate_permissions
from reviews import permissions

pytestmark = pytest.mark.django_db

CAST = ["anonymous", "alice", "bob", "olivia", "oscar", "cam", "audrey", "pat", "admin_user"]

# question -> the people answered "yes" for a job in review at TRE A
EXPECTED = {
    "review": {"olivia"},
    "post_message": {"alice", "bob", "olivia", "cam"},
    "check_outputs": {"cam"},
    "act_as_researcher": {"alice", "bob"},
    "cancel": {"alice", "bob", "olivia"},
    "view_request": {"alice", "bob", "olivia", "cam", "audrey", "admin_user"},
    "view_published_crate": {"alice", "bob", "olivia", "cam", "audrey", "admin_user"},
    "resubmit": {"alice", "bob"},
}


@pytest.fixture
def everyone(alice, bob, olivia, oscar, cam, audrey, pat, admin_user):
    people = dict(alice=alice, bob=bob, olivia=olivia, oscar=oscar, cam=cam, audrey=audrey, pat=pat)
    return {"anonymous": AnonymousUser(), "admin_user": admin_user, **people}


def _ask(question, user, job):
    if question == "view_request":
        return crate_permissions.can_view_request(user, job.request)
    if question == "resubmit":
        return user.is_authenticated and crate_permissions.can_resubmit(user, job.request)
    if question == "cancel":
        return crate_permissions.can_cancel(user, job)
    return getattr(permissions, f"can_{question}")(user, job)


def test_every_question_against_the_cast(new_job, everyone):
    job = new_job("in_review")
    wrong = []
    for question, allowed in EXPECTED.items():
        for name in CAST:
            got = bool(_ask(question, everyone[name], job))
            if got != (name in allowed):
                wrong.append(f"{question}: {name} expected {name in allowed}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_check_functions_raise_with_a_reason(new_job, bob, oscar):
    from django.core.exceptions import PermissionDenied

    job = new_job("in_review")
    with pytest.raises(PermissionDenied, match="another officer must decide"):
        permissions.check_review(bob, job)
    with pytest.raises(PermissionDenied, match="Only governance officers of TRE A"):
        permissions.check_review(oscar, job)
    with pytest.raises(PermissionDenied, match="cannot check its outputs"):
        permissions.check_check_outputs(bob, job)
    with pytest.raises(PermissionDenied, match="cannot see this request"):
        crate_permissions.check_view_request(oscar, job.request)


def test_a_finished_job_cannot_be_cancelled_by_anyone(new_job, everyone):
    job = new_job("rejected")
    assert not any(crate_permissions.can_cancel(everyone[name], job) for name in CAST)


def test_requests_visible_to_each_person_match_can_view_request(new_job, everyone):
    job = new_job("in_review")
    for name in CAST:
        user = everyone[name]
        if not user.is_authenticated:
            continue
        listed = crate_permissions.visible_requests(user).filter(pk=job.request_id).exists()
        assert listed == crate_permissions.can_view_request(user, job.request), name
