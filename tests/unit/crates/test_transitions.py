"""Every move of the job state machine against every kind of actor: allowed exactly where the table says."""

import pytest
from django.core.exceptions import PermissionDenied

from crates.models import Job
from crates.transitions import TRANSITIONS, TransitionError, check_transition, transition
from portal import audit
from portal.audit import AuditEvent
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
FROM_STATES = sorted({source for source, _ in TRANSITIONS})

# Each member of the cast and the one actor kind the table should see them as (None: no part to play).
CAST_KINDS = {
    "alice": "researcher",
    "bob": "researcher",
    "olivia": "officer",
    "cam": "checker",
    "oscar": None,
    "audrey": None,
    "pat": None,
    "agent_a": "agent",
    "agent_b": None,
    "system": "system",
}


@pytest.fixture
def cast(alice, bob, olivia, cam, oscar, audrey, pat, tre_a, tre_b):
    return {
        "alice": alice,
        "bob": bob,
        "olivia": olivia,
        "cam": cam,
        "oscar": oscar,
        "audrey": audrey,
        "pat": pat,
        "agent_a": builders.agent_for(tre_a, olivia),
        "agent_b": builders.agent_for(tre_b, oscar),
        "system": audit.SYSTEM,
    }


@pytest.mark.parametrize("source", FROM_STATES)
def test_who_may_make_each_move(new_job, cast, source):
    job = new_job(source)
    failures = []
    for target in S.values:
        move = TRANSITIONS.get((source, target))
        for name, actor in cast.items():
            try:
                check_transition(job, target, by=actor)
                outcome = "allowed"
            except TransitionError:
                outcome = "no such move"
            except PermissionDenied:
                outcome = "refused"
            if move is None:
                expected = "no such move"
            else:
                expected = "allowed" if CAST_KINDS[name] in move.actors else "refused"
            if outcome != expected:
                failures.append(f"{source} -> {target} by {name}: expected {expected}, got {outcome}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("source", "target"), sorted(TRANSITIONS))
def test_each_move_writes_the_change_and_its_audit_event(new_job, cast, source, target):
    move = TRANSITIONS[(source, target)]
    job = new_job(source)
    kind = sorted(move.actors)[0]
    actor = next(cast[name] for name, k in CAST_KINDS.items() if k == kind)
    before = AuditEvent.objects.count()
    transition(job, target, by=actor, message="moving on")
    job.refresh_from_db()
    assert job.status == target
    event = AuditEvent.objects.order_by("-id").first()
    assert AuditEvent.objects.count() == before + 1
    assert (event.verb, event.object_id, event.before, event.after["status"]) == (
        move.event,
        str(job.pk),
        {"status": source},
        target,
    )


def test_status_cannot_be_written_directly(new_job):
    job = new_job()
    job.status = S.RELEASED
    with pytest.raises(PermissionError):
        job.save()
    with pytest.raises(PermissionError):
        Job.objects.filter(pk=job.pk).update(status=S.RELEASED)
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW


def test_repeating_a_move_is_harmless(new_job, olivia):
    job = new_job()
    transition(job, S.IN_REVIEW, by=olivia)
    count = AuditEvent.objects.count()
    transition(job, S.IN_REVIEW, by=olivia)
    assert AuditEvent.objects.count() == count


def test_suspension_remembers_where_to_return(new_job):
    job = new_job(S.QUEUED)
    transition(job, S.SUSPENDED, by=audit.SYSTEM, message="Agreement lapsed")
    job.refresh_from_db()
    assert (job.suspended_from, job.suspended_reason) == (S.QUEUED, "Agreement lapsed")
    transition(job, S.QUEUED, by=audit.SYSTEM)
    job.refresh_from_db()
    assert (job.status, job.suspended_from, job.suspended_reason) == (S.QUEUED, "", "")


def test_terminal_states_have_no_way_out():
    from crates.transitions import TERMINAL

    assert not [pair for pair in TRANSITIONS if pair[0] in TERMINAL]


def test_the_committed_state_diagram_is_current():
    from django.conf import settings

    from reviews.statediagram import document

    assert (settings.BASE_DIR / "docs" / "job-states.md").read_text() == document()


def test_a_caller_holding_the_lock_moves_the_job_without_reading_it_again(new_job, django_assert_num_queries):
    from django.db import transaction

    job = new_job(S.APPROVED)
    with transaction.atomic():
        locked = Job.objects.select_for_update().select_related("request__project", "tre").get(pk=job.pk)
        # The status, then the audit event (lock the chain's head, insert the event, move the head),
        # then the webhook subscriptions the event may reach (portal/webhooks.py, same transaction).
        with django_assert_num_queries(5):
            transition(locked, S.QUEUED, by=audit.SYSTEM, locked=True)
    job.refresh_from_db()
    assert job.status == S.QUEUED
    assert AuditEvent.objects.filter(verb="job.queued", object_id=str(job.pk)).count() == 1
    assert audit.verify_chain() is None


@pytest.mark.django_db(transaction=True)
def test_a_locked_move_outside_a_transaction_is_refused(new_job, olivia):
    job = new_job()
    with pytest.raises(RuntimeError, match="row lock"):
        transition(job, S.IN_REVIEW, by=olivia, locked=True)
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW
