"""factory_boy factories for the registry. Decisions go through the services (see `approved_*` helpers)."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from portal.models import (
    TRE,
    Accreditation,
    ApprovedWorkflow,
    DataAccessAgreement,
    Dataset,
    Membership,
    Organisation,
    Project,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.django.Password("correct horse battery staple")


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")


class TREFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TRE

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"TRE {n}")
    slug = factory.Sequence(lambda n: f"tre-{n}")


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    tre = factory.SubFactory(TREFactory)
    identifier = factory.Sequence(lambda n: f"https://data.example.org/datasets/{n}")
    name = factory.Sequence(lambda n: f"Dataset {n}")


class AccreditationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Accreditation

    person = factory.SubFactory(UserFactory)
    kind = Accreditation.Kind.SAFE_RESEARCHER
    issuer = "UK Statistics Authority"
    valid_from = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=30))
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=365))
    verified_by = factory.SubFactory(UserFactory)
    verified_at = factory.LazyFunction(timezone.now)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    identifier = factory.Sequence(lambda n: f"PRJ-TEST-{n:04d}")
    title = factory.Sequence(lambda n: f"Project {n}")
    lay_summary = "A plain-language summary."
    public_benefit = "Better care."
    technical_summary = "Confidential methods."
    lead = factory.SubFactory(UserFactory)
    ethics_reference = "REC 00/XX/0000"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    person = factory.SubFactory(UserFactory)
    status = Membership.Status.PENDING


class AgreementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataAccessAgreement

    project = factory.SubFactory(ProjectFactory)
    tre = factory.SubFactory(TREFactory)
    reference = factory.Sequence(lambda n: f"DAA-{n:04d}")
    valid_from = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=365))
    created_by = factory.SubFactory(UserFactory)


class WorkflowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovedWorkflow

    name = factory.Sequence(lambda n: f"Workflow {n}")
    workflow_id = factory.Sequence(lambda n: f"https://workflowhub.example.org/workflows/{n}")
    version = "1"
    sha256 = "a" * 64
    language = ApprovedWorkflow.Language.CWL
    executor = ApprovedWorkflow.Executor.CWL


def make_dur_ready(project, tre, officer):
    """Give a project what its Data Use Register entry needs before a TRE approves it."""
    from portal import services

    if project.sponsor_id is None:
        project.sponsor = OrganisationFactory()
        project.save(update_fields=["sponsor"])
    agreement = AgreementFactory(project=project, tre=tre, created_by=officer)
    agreement.datasets.add(DatasetFactory(tre=tre))
    services.change_agreement_status(agreement, "activate", by=officer)
    return agreement
