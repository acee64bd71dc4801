"""Every role against every page: the expected answer is allow (200) or deny (403/redirect to sign-in)."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

ALLOW, DENY, LOGIN = "allow", "deny", "login"

CAST = [
    "anonymous",
    "alice",
    "bob",
    "penny",  # applied to the project, awaiting TRE A's decision
    "rex",  # removed from the project by its lead
    "lena",  # membership lapsed with her accreditation
    "olivia",
    "oscar",
    "cam",
    "audrey",
    "pat",
    "admin_user",
]


def _pages(project, agreement, tre_a, alice, job=None):
    """(name, url, {role: expectation}); roles not named get `default`."""
    return [
        ("home", reverse("home"), {"default": ALLOW}),
        ("dashboard", reverse("dashboard"), {"default": ALLOW, "anonymous": LOGIN}),
        ("organisations", reverse("organisation_list"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "organisation create",
            reverse("organisation_create"),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW, "oscar": ALLOW, "admin_user": ALLOW},
        ),
        ("tres", reverse("tre_list"), {"default": ALLOW, "anonymous": LOGIN}),
        ("tre detail", reverse("tre_detail", args=[tre_a.slug]), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "tre edit",
            reverse("tre_edit", args=[tre_a.slug]),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW, "admin_user": ALLOW},
        ),
        (
            "dataset create",
            reverse("dataset_create", args=[tre_a.slug]),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW, "admin_user": ALLOW},
        ),
        (
            "approvals queue",
            reverse("approvals_queue", args=[tre_a.slug]),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW},
        ),
        ("workflows", reverse("workflow_list"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "workflow create",
            reverse("workflow_create"),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW, "oscar": ALLOW},
        ),
        ("projects", reverse("project_list"), {"default": ALLOW, "anonymous": LOGIN}),
        ("project directory", reverse("project_directory"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "project create",
            reverse("project_create"),
            # Any researcher may start a project of their own.
            {
                **{r: ALLOW for r in ("alice", "bob", "penny", "rex", "lena")},
                "default": DENY,
                "anonymous": LOGIN,
            },
        ),
        (
            "project detail",
            reverse("project_detail", args=[project.pk]),
            {
                "default": DENY,
                "anonymous": LOGIN,
                "alice": ALLOW,
                "bob": ALLOW,
                "penny": ALLOW,  # their own application, nobody else's (see test_membership_states)
                "lena": ALLOW,
                "olivia": ALLOW,
                "audrey": ALLOW,
                "admin_user": ALLOW,
            },
        ),
        (
            "project edit",
            reverse("project_edit", args=[project.pk]),
            {"default": DENY, "anonymous": LOGIN, "bob": ALLOW, "admin_user": ALLOW},
        ),
        ("agreements", reverse("agreement_list"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "agreement create",
            reverse("agreement_create"),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW, "oscar": ALLOW},
        ),
        (
            "agreement detail",
            reverse("agreement_detail", args=[agreement.pk]),
            {
                "default": DENY,
                "anonymous": LOGIN,
                "alice": ALLOW,
                "bob": ALLOW,
                "olivia": ALLOW,
                "audrey": ALLOW,
                "admin_user": ALLOW,
            },
        ),
        (
            "agreement pdf",
            reverse("agreement_pdf", args=[agreement.pk]),
            {
                "default": DENY,
                "anonymous": LOGIN,
                "alice": ALLOW,
                "bob": ALLOW,
                "olivia": ALLOW,
                "audrey": ALLOW,
                "admin_user": ALLOW,
            },
        ),
        (
            "person detail",
            reverse("person_detail", args=[alice.pk]),
            {
                "default": DENY,
                "anonymous": LOGIN,
                "alice": ALLOW,
                "olivia": ALLOW,
                "oscar": ALLOW,
                "audrey": ALLOW,
                "admin_user": ALLOW,
            },
        ),
        ("profile", reverse("profile_edit"), {"default": ALLOW, "anonymous": LOGIN}),
        ("accreditations", reverse("accreditation_list"), {"default": ALLOW, "anonymous": LOGIN}),
        ("accreditation create", reverse("accreditation_create"), {"default": ALLOW, "anonymous": LOGIN}),
        ("tokens", reverse("token_list"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "audit",
            reverse("audit_list"),
            {"default": DENY, "anonymous": LOGIN, "audrey": ALLOW, "admin_user": ALLOW},
        ),
        (
            "audit verify",
            reverse("audit_verify"),
            {"default": DENY, "anonymous": LOGIN, "audrey": ALLOW, "admin_user": ALLOW},
        ),
        (
            "audit export",
            reverse("audit_export", args=["csv"]),
            {"default": DENY, "anonymous": LOGIN, "audrey": ALLOW, "admin_user": ALLOW},
        ),
        ("api schema", reverse("schema"), {"default": ALLOW}),
        ("api docs", reverse("api_docs"), {"default": ALLOW}),
        ("api me", reverse("api_me"), {"default": ALLOW, "anonymous": DENY}),
        ("api projects", reverse("api_project_list"), {"default": ALLOW, "anonymous": DENY}),
        ("admin", "/admin/", {"default": LOGIN, "admin_user": ALLOW}),
        ("requests", reverse("request_list"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "request create",
            reverse("request_create"),
            {"default": ALLOW, "anonymous": LOGIN},  # the form lists only projects one may submit to
        ),
        ("request build", reverse("request_build"), {"default": ALLOW, "anonymous": LOGIN}),
        ("notifications", reverse("notification_list"), {"default": ALLOW, "anonymous": LOGIN}),
        ("suspended jobs", reverse("suspended_jobs"), {"default": ALLOW, "anonymous": LOGIN}),
        (
            "review queue",
            reverse("review_queue", args=[tre_a.slug]),
            {"default": DENY, "anonymous": LOGIN, "olivia": ALLOW},
        ),
        ("api review queue", reverse("api_review_queue"), {"default": ALLOW, "anonymous": DENY}),
        ("api requests", reverse("api_request_list"), {"default": ALLOW, "anonymous": DENY}),
    ] + (
        []
        if job is None
        else [
            (
                "request detail",
                reverse("request_detail", args=[job.request_id]),
                {
                    "default": DENY,
                    "anonymous": LOGIN,
                    "alice": ALLOW,
                    "bob": ALLOW,
                    "olivia": ALLOW,
                    "cam": ALLOW,
                    "audrey": ALLOW,
                    "admin_user": ALLOW,
                },
            ),
            (
                "workflow files",
                reverse("workflow_files", args=[job.workflow_id]),
                {"default": ALLOW, "anonymous": LOGIN},
            ),
            (
                "workflow changes",
                reverse("workflow_diff", args=[job.workflow_id]),
                {"default": ALLOW, "anonymous": LOGIN},
            ),
            (
                "job detail",
                reverse("job_detail", args=[job.pk]),
                {
                    "default": DENY,
                    "anonymous": LOGIN,
                    "alice": ALLOW,
                    "bob": ALLOW,
                    "olivia": ALLOW,
                    "cam": ALLOW,
                    "audrey": ALLOW,
                    "admin_user": ALLOW,
                },
            ),
            (
                "job certificate",
                reverse("job_certificate", args=[job.pk]),
                {
                    "default": DENY,
                    "anonymous": LOGIN,
                    "alice": ALLOW,
                    "bob": ALLOW,
                    "olivia": ALLOW,
                    "cam": ALLOW,
                    "audrey": ALLOW,
                    "admin_user": ALLOW,
                },
            ),
            (
                "job crate",
                reverse("job_crate", args=[job.pk]),
                {
                    "default": DENY,
                    "anonymous": LOGIN,
                    "alice": ALLOW,
                    "bob": ALLOW,
                    "olivia": ALLOW,
                    "cam": ALLOW,
                    "audrey": ALLOW,
                    "admin_user": ALLOW,
                },
            ),
            (
                "api job detail",
                reverse("api_job_detail", args=[job.pk]),
                {
                    "default": DENY,
                    "anonymous": DENY,
                    "alice": ALLOW,
                    "bob": ALLOW,
                    "olivia": ALLOW,
                    "cam": ALLOW,
                    "audrey": ALLOW,
                    "admin_user": ALLOW,
                },
            ),
        ]
    )


@pytest.fixture
def everyone(request, alice, bob, penny, rex, lena, olivia, oscar, cam, audrey, pat, admin_user):
    return {
        "anonymous": None,
        "alice": alice,
        "bob": bob,
        "penny": penny,
        "rex": rex,
        "lena": lena,
        "olivia": olivia,
        "oscar": oscar,
        "cam": cam,
        "audrey": audrey,
        "pat": pat,
        "admin_user": admin_user,
    }


def _outcome(response):
    if response.status_code == 200:
        return ALLOW
    if response.status_code in (401, 403, 404):
        return DENY
    if response.status_code == 302 and (
        "/accounts/login/" in response.url or "/admin/login/" in response.url
    ):
        return LOGIN
    return f"unexpected {response.status_code} {getattr(response, 'url', '')}"


def test_every_role_against_every_page(everyone, new_job, tre_a):
    # Decided (changes asked for), so its decision certificate has something to certify.
    job = new_job("changes_requested")
    project = job.request.project
    agreement = project.agreements.get()
    alice = everyone["alice"]
    # One browser per role, signed in once through the real sign-in: the second factor for those
    # who have one (the admin site and the API ask for it), the password alone for the others.
    browsers = {}
    for role in CAST:
        browsers[role] = Client()
        if everyone[role] is not None:
            sign_in(browsers[role], everyone[role])
    failures = []
    for name, url, expected in _pages(project, agreement, tre_a, alice, job):
        for role in CAST:
            want = expected.get(role, expected["default"])
            response = browsers[role].get(url)
            got = _outcome(response)
            if response.streaming:
                # Exhaust streamed downloads so their files close (and the test client's own
                # wrapper closes the response without dropping the database connection).
                b"".join(response.streaming_content)
            if got != want:
                failures.append(f"{role:10} {name:20} expected {want}, got {got}")
    assert not failures, "\n".join(failures)
