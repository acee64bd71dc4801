import pytest
from django.core.management import call_command

from portal.audit import AuditEvent, verify_chain
from portal.models import TRE, DataAccessAgreement, Membership, Project

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_the_federation_and_is_idempotent(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "olivia@example.org" in out and "five-safes-demo" in out
    assert TRE.objects.count() == 3
    assert Project.objects.count() == 3
    # pat has a lay summary to read: Taybridge requires PPIE review and PRJ-2026-0003 waits there.
    assert TRE.objects.get(slug="taybridge").ppie_review == "required"
    assert Project.objects.get(identifier="PRJ-2026-0003").approvals.get().status == "pending"
    assert DataAccessAgreement.objects.filter(status="active").count() == 3
    # dan's accreditation has expired, so the sweep lapsed his membership.
    assert Membership.objects.get(person__username="dan").status == Membership.Status.LAPSED
    assert (
        Membership.objects.get(person__username="alice", project__identifier="PRJ-2026-0001").status
        == "active"
    )
    events = AuditEvent.objects.count()
    call_command("seed_demo")
    assert AuditEvent.objects.count() == events
    assert TRE.objects.count() == 3
    assert verify_chain() is None


def test_demo_totp_prints_a_code_the_login_accepts(capsys):
    from allauth.mfa.totp.internal.auth import validate_totp_code

    from portal.demo import totp_secret_for

    call_command("demo_totp", "olivia")
    code = capsys.readouterr().out.strip()
    assert len(code) == 6 and validate_totp_code(totp_secret_for("olivia"), code)
