"""Issue 16, part 6: each claim carries the TRE's disclosure policy (with the project's agreement
overrides), so the agent suppresses and rounds by the policy the portal checks outputs against."""

import pytest
from django.urls import reverse

from crates.models import Job
from portal.models import DataAccessAgreement
from reviews import outputs
from tests.dispatch_helpers import bearer, issue, queued_job

pytestmark = pytest.mark.django_db

S = Job.Status


def _claim(client, secret):
    response = client.post(
        reverse("api_agent_claim"),
        {"wait_seconds": 0},
        content_type="application/json",
        headers=bearer(secret),
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_claim_carries_the_tres_policy_narrowed_by_the_agreement(
    client, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks, tre_a
):
    tre_a.min_cell_count, tre_a.rounding_base, tre_a.zeros_disclosive = 15, 5, False
    tre_a.save()
    agreement = DataAccessAgreement.objects.get(project=registry["project"], tre=tre_a, status="active")
    agreement.disclosure_overrides = {"min_cell_count": 25, "dominance_k": 0.8}
    agreement.save()
    job = queued_job(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    _, secret = issue(tre_a, olivia)
    body = _claim(client, secret)
    assert body["id"] == job.pk
    assert body["policy"] == {"min_cell_count": 25, "zeros_disclosive": False, "rounding_base": 5}
    # The same thresholds the portal checks the job's outputs against.
    policy = outputs.policy_for(job)
    assert (policy.min_cell_count, policy.rounding_base, policy.zeros_disclosive) == (25, 5, False)
    # A restarted agent learns it again from reconcile.
    held = client.get(reverse("api_agent_reconcile"), headers=bearer(secret)).json()["jobs"]
    assert held[0]["policy"] == body["policy"]


def test_without_an_agreement_override_the_tres_policy_is_sent(
    client, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks, tre_a
):
    queued_job(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    _, secret = issue(tre_a, olivia)
    assert _claim(client, secret)["policy"] == {
        "min_cell_count": 10,
        "zeros_disclosive": False,
        "rounding_base": 0,
    }
