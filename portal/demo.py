"""The demo federation: three fictional TREs, their people, projects and agreements.

Built through the service layer, so the audit trail of a fresh demo reads like real use.
Running it again changes nothing (each step looks for what it would create).
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portal import roles, services
from portal.models import (
    TRE,
    Accreditation,
    DataAccessAgreement,
    Dataset,
    Decision,
    Membership,
    MembershipApproval,
    Organisation,
    Project,
)

DEMO_PASSWORD = "five-safes-demo"  # noqa: S105  (printed for the demo; never used outside it)


@dataclass(frozen=True)
class CastMember:
    username: str
    name: str
    roles: tuple
    orcid: str = ""


CAST = [
    CastMember("alice", "Alice Researcher", (roles.RESEARCHER,), "0000-0002-1825-0097"),
    CastMember("bob", "Bob Lead", (roles.RESEARCHER, roles.PROJECT_LEAD), "0000-0001-5109-3700"),
    CastMember("dan", "Dan Lapsed", (roles.RESEARCHER,), "0000-0002-1694-233X"),
    CastMember("olivia", "Olivia Officer", (roles.GOVERNANCE_OFFICER,)),
    CastMember("oscar", "Oscar Officer", (roles.GOVERNANCE_OFFICER,)),
    CastMember("cam", "Cam Checker", (roles.OUTPUT_CHECKER,)),
    CastMember("chris", "Chris Checker", (roles.OUTPUT_CHECKER,)),
    CastMember("audrey", "Audrey Auditor", (roles.AUDITOR,)),
    CastMember("pat", "Pat Public", (roles.PPIE,)),
    CastMember("admin", "Federation Admin", (roles.FEDERATION_ADMIN,)),
]

ORGANISATIONS = [
    ("Tawe University Population Data Science", "https://tawe.example.org"),
    ("Northern Federated Health Data Network", "https://nfhdn.example.org"),
    ("Taybridge Health Informatics Centre", "https://thic.example.org"),
    ("Four Nations Respiratory Research Consortium", "https://fnrrc.example.org"),
]

TRES = [
    {
        "slug": "cymru-sdb",
        "name": "Cymru Secure Data Bank",
        "organisation": 0,
        "public_description": "Anonymised, linked population data for Wales: GP records, hospital admissions and deaths.",
        "datasets": [
            ("https://cymru-sdb.example.org/datasets/wlgp", "Welsh Longitudinal GP Dataset", "pseudonymised"),
            (
                "https://cymru-sdb.example.org/datasets/pedw",
                "Patient Episode Database for Wales",
                "pseudonymised",
            ),
        ],
        "allowed_executors": ["cwl", "sql-aggregate"],
    },
    {
        "slug": "nfhdn",
        "name": "Northern Federated Data Network",
        "organisation": 1,
        "public_description": "A federated network of NHS trusts in the north of England sharing de-identified data.",
        "datasets": [
            (
                "https://nfhdn.example.org/datasets/omop-cdm",
                "Regional OMOP Common Data Model",
                "deidentified",
            ),
        ],
        "allowed_executors": ["cwl", "sql-aggregate", "tes"],
    },
    {
        "slug": "taybridge",
        "name": "Taybridge Health Informatics Centre",
        "organisation": 2,
        "public_description": "Linked health data for the east of Scotland, held in a secure safe haven.",
        "datasets": [
            ("https://thic.example.org/datasets/prescribing", "Community Prescribing", "pseudonymised"),
            ("https://thic.example.org/datasets/smr01", "Hospital Inpatient Episodes", "pseudonymised"),
        ],
        "allowed_executors": ["cwl", "sql-aggregate"],
    },
]


def totp_secret_for(username):
    """A fixed demo TOTP secret per person, so the demo can print it and tests can compute codes."""
    digest = hashlib.sha256(f"five-safes-demo-totp-{username}".encode()).digest()[:20]
    return base64.b32encode(digest).decode()


def _user(member):
    User = get_user_model()
    email = f"{member.username}@example.org"
    user = User.objects.filter(username=member.username).first()
    if user is None:
        user = User.objects.create_user(member.username, email, DEMO_PASSWORD)
        first, _, last = member.name.partition(" ")
        user.first_name, user.last_name = first, last
        user.is_staff = user.is_superuser = roles.FEDERATION_ADMIN in member.roles
        user.save()
        from allauth.account.models import EmailAddress

        EmailAddress.objects.get_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        user.profile.display_name = member.name
        user.profile.orcid = member.orcid
        user.profile.save()
    return user


def _activate_totp(user):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, totp_secret_for(user.username))
        RecoveryCodes.activate(user)


@transaction.atomic
def seed_registry():
    today = timezone.localdate()
    cast = {member.username: _user(member) for member in CAST}
    admin = cast["admin"]

    organisations = []
    for name, website in ORGANISATIONS:
        organisation, _ = Organisation.objects.get_or_create(name=name, defaults={"website": website})
        organisations.append(organisation)
    for person, org in (("alice", 0), ("bob", 3), ("dan", 1)):
        profile = cast[person].profile
        if profile.affiliation_id is None:
            profile.affiliation = organisations[org]
            profile.save(update_fields=["affiliation"])

    tres = {}
    for spec in TRES:
        tre, created = TRE.objects.get_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"],
                "organisation": organisations[spec["organisation"]],
                "public_description": spec["public_description"],
                "allowed_executors": spec["allowed_executors"],
                "permitted_output_kinds": ["table", "figure"],
            },
        )
        tres[spec["slug"]] = tre
        for identifier, name, sensitivity in spec["datasets"]:
            Dataset.objects.get_or_create(
                tre=tre,
                identifier=identifier,
                defaults={
                    "name": name,
                    "sensitivity": sensitivity,
                    "public_description": f"{name}, held by {tre}.",
                },
            )
        if created:
            officer = cast["oscar"] if spec["slug"] == "nfhdn" else cast["olivia"]
            services.grant_role(officer, roles.GOVERNANCE_OFFICER, by=admin, tre=tre)
            for checker in ("cam", "chris"):
                services.grant_role(cast[checker], roles.OUTPUT_CHECKER, by=admin, tre=tre)

    for member in CAST:
        for role in member.roles:
            if role not in roles.TRE_ROLE_PERMISSIONS:
                user = cast[member.username]
                if not user.groups.filter(name=role).exists():
                    services.grant_role(user, role, by=admin)
        if set(member.roles) & set(roles.TRE_ROLE_PERMISSIONS) or set(member.roles) & {
            roles.AUDITOR,
            roles.FEDERATION_ADMIN,
        }:
            _activate_totp(cast[member.username])

    # Accreditations: bob long-valid, alice expiring soon, dan expired.
    for person, issuer, start, end, verify in (
        ("bob", "UK Statistics Authority", today - timedelta(days=400), today + timedelta(days=700), True),
        ("alice", "UK Statistics Authority", today - timedelta(days=1080), today + timedelta(days=20), True),
        (
            "dan",
            "Office for National Statistics",
            today - timedelta(days=1200),
            today - timedelta(days=10),
            True,
        ),
    ):
        accreditation, created = Accreditation.objects.get_or_create(
            person=cast[person],
            kind=Accreditation.Kind.SAFE_RESEARCHER,
            defaults={
                "issuer": issuer,
                "valid_from": start,
                "valid_until": end,
                "reference": f"SRT-{person.upper()}",
            },
        )
        if created and verify:
            services.verify_accreditation(accreditation, by=cast["olivia"])

    projects = [
        {
            "identifier": "PRJ-2026-0001",
            "title": "Long-term outcomes after COVID-19 across the devolved nations",
            "lay_summary": "We will compare how people recovered after COVID-19 in Wales, the north of England "
            "and Scotland, to find out who needed the most support in the months after infection.",
            "public_benefit": "Helps the NHS plan long-COVID services where they are needed most.",
            "technical_summary": "Matched cohort study; Cox models of time to GP re-consultation by nation.",
            "funder": "Fictional Health Research Fund",
            "grant_reference": "FHRF-22-0412",
            "ethics_reference": "REC 22/NW/0123",
            "tres": ["cymru-sdb", "nfhdn"],
            "members": [("alice", Membership.Role.RESEARCHER), ("dan", Membership.Role.ANALYST)],
        },
        {
            "identifier": "PRJ-2026-0002",
            "title": "Asthma prescribing and air quality",
            "lay_summary": "We will look at whether asthma inhaler prescriptions rise after days of poor air quality.",
            "public_benefit": "Evidence for local air-quality alerts and pharmacy planning.",
            "technical_summary": "Time-stratified case-crossover analysis of prescribing counts.",
            "funder": "Fictional Clean Air Trust",
            "grant_reference": "FCAT-2025-77",
            "ethics_reference": "REC 25/ES/0042",
            "tres": ["taybridge"],
            "members": [("alice", Membership.Role.ANALYST)],
        },
    ]
    for spec in projects:
        project = Project.objects.filter(identifier=spec["identifier"]).first()
        if project is not None:
            continue
        from portal.forms import ProjectForm

        form = ProjectForm(
            {
                **{key: spec[key] for key in ProjectForm.Meta.fields if key in spec},
                "sponsor": organisations[3].pk,
                "start_date": today - timedelta(days=90),
                "end_date": today + timedelta(days=640),
            }
        )
        if not form.is_valid():
            raise ValueError(f"Demo project {spec['identifier']} is invalid: {form.errors.as_text()}")
        project = services.create_project(form, by=cast["bob"])
        for username, role in spec["members"]:
            membership = services.invite_member(project, cast[username], role, by=cast["bob"])
            services.accept_invitation(membership, by=cast[username])
        for slug in spec["tres"]:
            tre = tres[slug]
            officer = cast["oscar"] if slug == "nfhdn" else cast["olivia"]
            approval = services.request_project_approval(project, tre, by=cast["bob"])
            # The agreement is in force before approval: the Data Use Register entry names its datasets.
            agreement = DataAccessAgreement.objects.create(
                project=project,
                tre=tre,
                reference=f"DAA-{slug.upper()}-{project.identifier[-4:]}",
                valid_from=today - timedelta(days=60),
                valid_until=today + timedelta(days=365 if slug != "taybridge" else 25),
                conditions="Outputs must be aggregate; no record-level data may leave the TRE.",
                permitted_output_kinds=["table", "figure"],
                created_by=officer,
            )
            agreement.datasets.set(tre.datasets.all())
            services.audit.record("agreement.created", by=officer, obj=agreement, tre=tre, project=project)
            services.change_agreement_status(agreement, "activate", by=officer)
            services.decide_project(approval, Decision.APPROVED, by=officer)
            for membership_approval in MembershipApproval.objects.filter(
                membership__project=project, tre=tre
            ):
                person = membership_approval.membership.person
                if services.has_valid_accreditation(person):
                    services.decide_membership(membership_approval, Decision.APPROVED, by=officer)

    # The daily sweep lapses dan, whose accreditation has expired.
    services.lapse_expired_memberships()
    _seed_ppie_work(cast, tres, organisations[3], today)
    return cast


def _seed_ppie_work(cast, tres, sponsor, today):
    """pat's first job: Taybridge asks PPIE members to clear lay summaries before it approves a project,
    and bob's new project waits there with a summary written for researchers, not the public."""
    from portal.forms import ProjectForm

    taybridge = tres["taybridge"]
    if taybridge.ppie_review != TRE.PPIEReview.REQUIRED:
        taybridge.ppie_review = TRE.PPIEReview.REQUIRED
        taybridge.save(update_fields=["ppie_review"])
    if Project.objects.filter(identifier="PRJ-2026-0003").exists():
        return
    form = ProjectForm(
        {
            "identifier": "PRJ-2026-0003",
            "title": "Waiting times for hip replacement",
            "lay_summary": "Multivariable survival analysis of SMR01 episodes to estimate time-to-arthroplasty "
            "hazard ratios by SIMD quintile.",
            "public_benefit": "Evidence on inequalities in waiting times for hip replacement.",
            "technical_summary": "Cox proportional hazards with SIMD quintile as exposure.",
            "sponsor": sponsor.pk,
            "start_date": today,
            "end_date": today + timedelta(days=365),
        }
    )
    if not form.is_valid():
        raise ValueError(f"Demo project PRJ-2026-0003 is invalid: {form.errors.as_text()}")
    project = services.create_project(form, by=cast["bob"])
    services.request_project_approval(project, taybridge, by=cast["bob"])


def summary():
    lines = [
        "",
        "Demo federation ready. Sign in with any of these (password: " + DEMO_PASSWORD + "):",
    ]
    for member in CAST:
        names = ", ".join(roles.ROLES[r] for r in member.roles)
        line = f"  {member.username + '@example.org':24} {names}"
        if set(member.roles) & {
            roles.GOVERNANCE_OFFICER,
            roles.OUTPUT_CHECKER,
            roles.AUDITOR,
            roles.FEDERATION_ADMIN,
        }:
            line += f"   TOTP secret {totp_secret_for(member.username)}"
        lines.append(line)
    lines += [
        "Officers, checkers, the auditor and the admin need a one-time code at sign-in: add the secret to an",
        "authenticator app, or print the current code with: .venv/bin/python manage.py demo_totp olivia",
        "",
    ]
    return "\n".join(lines)
