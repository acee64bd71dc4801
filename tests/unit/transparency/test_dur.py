"""The HDR UK Data Use Register: template columns and order, required fields, values and formats."""

import csv
import io
import json
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import services
from portal.forms import ProjectForm
from portal.models import Accreditation, ProjectApproval
from tests import factories
from transparency import dur

pytestmark = pytest.mark.django_db

# The header row the Gateway's importer checks, in order (HDRUK/gateway-api ImportDurFile.php).
TEMPLATE_HEADERS = [
    "Project ID",
    "Organisation name*",
    "Organisation ID",
    "Organisation sector",
    "Applicant name(s)",
    "Applicant ID",
    "Funders/ Sponsors",
    "DEA accredited researcher?",
    "Sub-licence arrangements (if any)?",
    "Project title*",
    "Lay summary*",
    "Public benefit statement*",
    "Request category type",
    "Technical summary",
    "Other approval committees",
    "Project start date",
    "Project end date",
    "Latest approval date*",
    "Dataset(s) name*",
    "Data sensitivity level",
    "Legal basis for provision of data under Article 6",
    "Lawful conditions for provision of data under Article 9",
    "Common Law Duty of Confidentiality",
    "National data opt-out applied?",
    "Request frequency",
    "For linked datasets, specify how the linkage will take place",
    "Description of the confidential data being used",
    "Release/Access date",
    "Access type*",
    "How has data been processed to enhance privacy?",
    "Link to research outputs",
]
REQUIRED = [
    "Organisation name",
    "Project title",
    "Lay summary",
    "Public benefit statement",
    "Latest approval date",
    "Dataset(s) name",
    "Access type",
]


def make_project(
    lead,
    officer,
    tre,
    *,
    identifier="PRJ-DUR-0001",
    sponsor="default",
    datasets=None,
    approve=True,
    **fields,
):
    """A project made through the services in the order the register needs: agreement in force, then approval."""
    if sponsor == "default":
        sponsor = factories.OrganisationFactory(website="https://uni.example.org")
    data = {
        "identifier": identifier,
        "title": f"Heart failure after surgery ({identifier})",
        "lay_summary": "How often people develop heart failure after an operation.",
        "public_benefit": "Safer operations.",
        "technical_summary": "Poisson regression.",
        "funder": "Heart Research Fund",
        "grant_reference": "HRF-1",
        "start_date": "2026-01-01",
        "end_date": "2027-12-31",
        "sponsor": sponsor.pk if sponsor else "",
        **fields,
    }
    form = ProjectForm(data)
    assert form.is_valid(), form.errors
    project = services.create_project(form, by=lead)
    if datasets is None:
        datasets = [factories.DatasetFactory(tre=tre, name=f"Hospital admissions {identifier}")]
    if datasets:
        agreement = factories.AgreementFactory(project=project, tre=tre, created_by=officer)
        agreement.datasets.add(*datasets)
        services.change_agreement_status(agreement, "activate", by=officer)
    if approve:
        # Approval needs a complete entry; a project meant to be incomplete loses its sponsor or its
        # data afterwards (an edit, an agreement that ends), as happens in real life.
        listed = any(d.is_public for d in datasets)
        if sponsor is None:
            project.sponsor = factories.OrganisationFactory()
            project.save(update_fields=["sponsor"])
        standby = None
        if not listed:
            standby = factories.AgreementFactory(project=project, tre=tre, created_by=officer)
            standby.datasets.add(factories.DatasetFactory(tre=tre))
            services.change_agreement_status(standby, "activate", by=officer)
        approval = services.request_project_approval(project, tre, by=lead)
        services.decide_project(approval, "approved", by=officer)
        if sponsor is None:
            project.sponsor = None
            project.save(update_fields=["sponsor"])
        if standby is not None:
            standby.datasets.update(is_public=False)  # the TRE later unlists the dataset
    project.refresh_from_db()
    return project


def loaded(project):
    return dur.dur_projects().get(pk=project.pk)


# --- The template ------------------------------------------------------------------------


def test_columns_are_the_templates_31_in_order():
    assert list(dur.HEADERS) == TEMPLATE_HEADERS
    assert len({c.field for c in dur.COLUMNS}) == 31
    assert set(dur.COLUMN_HELP) == {c.field for c in dur.COLUMNS}


def test_the_seven_required_fields_are_the_templates():
    assert [c.name for c in dur.REQUIRED] == REQUIRED


def test_lookups_hold_the_templates_values():
    assert dur.OrganisationSector.values == [
        "Academic Institute",
        "CQC Registered Health or/and Social Care provider",
        "Independent Sector Organisation",
        "Government Agency (Health and Adult Social Care)",
        "Commercial",
        "Local authority",
        "Government Agency (Other)",
        "Other",
    ]
    assert dur.AccessType.values == ["TRE", "Release"]
    assert dur.SensitivityLevel.values == ["Personally Identifiable", "De-Personalised", "Anonymous"]
    assert set(dur.ARTICLE6_TEXT) == set(dur.Article6.values)
    assert set(dur.ARTICLE9_TEXT) == set(dur.Article9.values)
    assert dur.ARTICLE9_TEXT["j"].startswith("(j) processing is necessary for archiving purposes")


# --- One entry ---------------------------------------------------------------------------


def test_an_entry_takes_its_values_from_the_registry(bob, olivia, tre_a):
    listed = factories.DatasetFactory(tre=tre_a, name="Hospital admissions", sensitivity="pseudonymised")
    unlisted = factories.DatasetFactory(
        tre=tre_a, name="Cancer registry", sensitivity="identifiable", is_public=False
    )
    project = make_project(bob, olivia, tre_a, datasets=[listed, unlisted])
    approval = ProjectApproval.objects.get(project=project, tre=tre_a)
    agreement = project.agreements.get()

    entry = dur.dur_entry(loaded(project))

    assert list(entry) == [c.field for c in dur.COLUMNS]
    assert entry["project_id_text"] == "PRJ-DUR-0001"
    assert entry["organisation_name"] == project.sponsor.name
    assert entry["funders_and_sponsors"] == ["Heart Research Fund", project.sponsor.name]
    assert entry["project_title"] == project.title
    assert entry["lay_summary"] == project.lay_summary
    assert entry["public_benefit_statement"] == "Safer operations."
    assert entry["project_start_date"] == date(2026, 1, 1)
    assert entry["project_end_date"] == date(2027, 12, 31)
    assert entry["latest_approval_date"] == timezone.localdate(approval.decided_at)
    assert entry["access_date"] == timezone.localdate(agreement.approved_at)
    # Only listed datasets are named; the sensitivity is that of the most sensitive data used.
    assert entry["non_gateway_datasets"] == ["Hospital admissions"]
    assert entry["data_sensitivity_level"] == "Personally Identifiable"
    assert entry["access_type"] == "TRE"
    # Not public, so not in the register.
    assert entry["technical_summary"] == ""
    # Nobody agreed to be named.
    assert entry["non_gateway_applicants"] == []
    assert entry["applicant_id"] == ""
    assert entry["accredited_researcher_status"] == ""
    # Fields the registry does not hold yet stay empty.
    assert entry["legal_basis_for_data_article6"] == ""
    assert entry["other_approval_committees"] == []
    assert entry["non_gateway_outputs"] == []


def test_organisation_id_is_the_sponsors_ror(bob, olivia, tre_a):
    sponsor = factories.OrganisationFactory(ror_id="https://ror.org/02wnqcb97")
    project = make_project(bob, olivia, tre_a, sponsor=sponsor)
    assert dur.dur_entry(project)["organisation_id"] == "https://ror.org/02wnqcb97"


def test_datasets_come_only_from_tres_that_approved_the_project(bob, olivia, oscar, tre_a, tre_b):
    project = make_project(bob, olivia, tre_a)
    elsewhere = factories.AgreementFactory(project=project, tre=tre_b, created_by=oscar)
    elsewhere.datasets.add(factories.DatasetFactory(tre=tre_b, name="Not approved here"))
    services.change_agreement_status(elsewhere, "activate", by=oscar)

    assert dur.dur_entry(project)["non_gateway_datasets"] == ["Hospital admissions PRJ-DUR-0001"]


def test_register_only_fields_are_read_from_the_project_when_it_has_them(bob, olivia, tre_a):
    project = loaded(make_project(bob, olivia, tre_a))
    project.organisation_sector = dur.OrganisationSector.ACADEMIC
    project.sublicence_arrangements = dur.YesNo.NO
    project.request_category_type = dur.RequestCategory.PUBLIC_HEALTH
    project.other_approval_committees = "London REC\nConfidentiality Advisory Group\n"
    project.legal_basis_for_data_article6 = dur.Article6.E
    project.legal_basis_for_data_article9 = dur.Article9.J
    project.duty_of_confidentiality = dur.DutyOfConfidentiality.SECTION_251
    project.national_data_optout = dur.YesNoNotApplicable.YES
    project.request_frequency = dur.RequestFrequency.ONE_OFF
    project.dataset_linkage_description = "Linked by NHS number inside the TRE."
    project.confidential_data_description = "Date of birth, postcode district"
    project.access_type = dur.AccessType.RELEASE
    project.privacy_enhancements = "Pseudonymised; small counts suppressed."

    entry = dur.dur_entry(project)

    assert entry["organisation_sector"] == "Academic Institute"
    assert entry["sublicence_arrangements"] == "No"
    assert entry["request_category_type"] == "Public Health Research"
    assert entry["other_approval_committees"] == ["London REC", "Confidentiality Advisory Group"]
    assert entry["legal_basis_for_data_article6"] == dur.ARTICLE6_TEXT["e"]
    assert entry["legal_basis_for_data_article9"] == dur.ARTICLE9_TEXT["j"]
    assert entry["duty_of_confidentiality"] == "Section 251 NHS Act 2006"
    assert entry["national_data_optout"] == "Yes"
    assert entry["request_frequency"] == "One-off"
    assert entry["dataset_linkage_description"] == "Linked by NHS number inside the TRE."
    assert entry["confidential_data_description"] == "Date of birth, postcode district"
    assert entry["access_type"] == "Release"
    assert entry["privacy_enhancements"] == "Pseudonymised; small counts suppressed."


def test_people_are_named_only_with_their_consent(bob, alice, olivia, tre_a):
    project = make_project(bob, olivia, tre_a)
    membership = services.invite_member(project, alice, "researcher", by=bob)
    services.accept_invitation(membership, by=alice)
    for person in (alice, bob):
        for approval in project.memberships.get(person=person).approvals.all():
            services.decide_membership(approval, "approved", by=olivia)
    bob.profile.display_name, bob.profile.orcid = "Bob Lead", "0000-0002-1825-0097"
    bob.profile.save()
    alice.profile.display_name = "Alice Researcher"
    alice.profile.save()

    project = loaded(project)
    assert dur.dur_entry(project)["non_gateway_applicants"] == []

    project.lead.profile.publish_name_in_registers = True
    entry = dur.dur_entry(project)
    assert entry["non_gateway_applicants"] == ["Bob Lead"]
    assert entry["applicant_id"] == "https://orcid.org/0000-0002-1825-0097"
    assert entry["accredited_researcher_status"] == "No"  # Safe Researcher Training is not DEA accreditation

    alice_member = next(m for m in project.dur_members if m.person_id == alice.pk)
    alice_member.person.profile.publish_name_in_registers = True
    assert dur.dur_entry(project)["non_gateway_applicants"] == ["Bob Lead", "Alice Researcher"]


def test_a_consenting_person_without_a_name_is_not_named_by_email(bob, olivia, tre_a):
    project = loaded(make_project(bob, olivia, tre_a))
    project.lead.profile.publish_name_in_registers = True
    entry = dur.dur_entry(project)
    assert entry["non_gateway_applicants"] == []
    assert bob.email not in json.dumps(entry, default=str)


def test_dea_accreditation_of_a_consenting_lead(bob, olivia, tre_a):
    factories.AccreditationFactory(person=bob, kind=Accreditation.Kind.ONS_ACCREDITED, issuer="ONS")
    bob.profile.display_name = "Bob Lead"
    bob.profile.save()
    project = loaded(make_project(bob, olivia, tre_a))
    project.lead.profile.publish_name_in_registers = True
    assert dur.dur_entry(project)["accredited_researcher_status"] == "Yes"


# --- Required fields ---------------------------------------------------------------------


def test_missing_required_fields_are_named(bob, olivia, tre_a):
    project = make_project(bob, olivia, tre_a, sponsor=None, datasets=[])
    assert dur.dur_missing_fields(project) == ["Organisation name", "Dataset(s) name"]


def test_a_project_not_yet_approved_has_no_approval_date_and_no_data(bob, olivia, tre_a):
    # Its agreement is in force, but data count only at TREs that approved the project.
    project = make_project(bob, olivia, tre_a, approve=False)
    assert dur.dur_missing_fields(project) == ["Latest approval date", "Dataset(s) name"]


def test_only_publicly_listed_datasets_satisfy_the_dataset_field(bob, olivia, tre_a):
    hidden = factories.DatasetFactory(tre=tre_a, is_public=False)
    project = make_project(bob, olivia, tre_a, datasets=[hidden])
    assert dur.dur_missing_fields(project) == ["Dataset(s) name"]


def test_check_dur_ready_passes_a_complete_project(bob, olivia, tre_a):
    assert dur.check_dur_ready(make_project(bob, olivia, tre_a)) is None


def test_check_dur_ready_explains_what_is_missing(bob, olivia, tre_a):
    project = make_project(bob, olivia, tre_a, sponsor=None, datasets=[])
    with pytest.raises(ValidationError) as raised:
        dur.check_dur_ready(project)
    error = raised.value
    assert error.code == "dur_incomplete"
    assert error.params == {"missing": ["Organisation name", "Dataset(s) name"]}
    assert "Organisation name: choose the project's sponsor organisation" in error.messages[0]
    assert "publicly listed dataset" in error.messages[0]


def test_a_lay_summary_over_300_words_is_refused(bob, olivia, tre_a):
    project = make_project(bob, olivia, tre_a, lay_summary="word " * 301, approve=False)
    with pytest.raises(ValidationError, match="at most 300 words"):
        services.decide_project(
            services.request_project_approval(project, tre_a, by=bob), "approved", by=olivia
        )


def test_the_check_in_the_approval_transaction_undoes_an_incomplete_approval(bob, olivia, tre_a):
    """How decide_project is to call it: after the approval is saved, inside its transaction."""
    project = make_project(bob, olivia, tre_a, sponsor=None, approve=False)
    approval = services.request_project_approval(project, tre_a, by=bob)
    with pytest.raises(ValidationError), transaction.atomic():
        services.decide_project(approval, "approved", by=olivia)
        dur.check_dur_ready(project)
    approval.refresh_from_db()
    assert approval.status == "pending"


# --- Export ------------------------------------------------------------------------------


def _rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_the_template_header_and_one_row_per_complete_entry(bob, olivia, tre_a):
    complete = make_project(bob, olivia, tre_a, identifier="PRJ-DUR-0001")
    make_project(bob, olivia, tre_a, identifier="PRJ-DUR-0002", sponsor=None)
    extra = factories.DatasetFactory(tre=tre_a, name="Deaths, registered")
    agreement = factories.AgreementFactory(project=complete, tre=tre_a, created_by=olivia)
    agreement.datasets.add(extra)
    services.change_agreement_status(agreement, "activate", by=olivia)

    text, skipped = dur.export("csv")

    rows = _rows(text)
    assert rows[0] == TEMPLATE_HEADERS
    assert len(rows) == 2 and all(len(row) == 31 for row in rows)
    row = dict(zip(TEMPLATE_HEADERS, rows[1], strict=True))
    assert row["Project ID"] == "PRJ-DUR-0001"
    assert row["Project start date"] == "2026-01-01"
    assert row["Latest approval date*"] == timezone.localdate().isoformat()
    # Lists are comma-separated with no space: the importer splits on "," without trimming.
    assert row["Dataset(s) name*"] == "Deaths, registered,Hospital admissions PRJ-DUR-0001"
    assert row["Funders/ Sponsors"] == f"Heart Research Fund,{complete.sponsor.name}"
    assert row["Access type*"] == "TRE"
    assert row["Technical summary"] == ""
    assert skipped == [("PRJ-DUR-0002", ["Organisation name: choose the project's sponsor organisation"])]
    assert text.endswith("\r\n")


def test_csv_cells_cannot_run_as_spreadsheet_formulas(bob, olivia, tre_a):
    make_project(bob, olivia, tre_a, lay_summary='=HYPERLINK("https://evil.example","click")')
    row = _rows(dur.export("csv")[0])[1]
    assert row[TEMPLATE_HEADERS.index("Lay summary*")] == '\'=HYPERLINK("https://evil.example","click")'


def test_json_uses_the_gateway_field_names_in_template_order(bob, olivia, tre_a):
    make_project(bob, olivia, tre_a)
    document = json.loads(dur.export("json")[0])
    assert [c["header"] for c in document["columns"]] == TEMPLATE_HEADERS
    assert [c["field"] for c in document["columns"] if c["required"]] == [c.field for c in dur.REQUIRED]
    (entry,) = document["data_uses"]
    assert list(entry) == [c.field for c in dur.COLUMNS]
    assert entry["non_gateway_datasets"] == ["Hospital admissions PRJ-DUR-0001"]
    assert entry["non_gateway_applicants"] == []
    assert entry["project_start_date"] == "2026-01-01"
    assert entry["organisation_sector"] is None
    assert entry["access_type"] == "TRE"


def test_export_dur_command_writes_csv_and_json(bob, olivia, tre_a, tmp_path):
    make_project(bob, olivia, tre_a, identifier="PRJ-DUR-0001")
    make_project(bob, olivia, tre_a, identifier="PRJ-DUR-0002", datasets=[])
    out, err = io.StringIO(), io.StringIO()
    call_command("export_dur", "--format", "csv", stdout=out, stderr=err)
    assert _rows(out.getvalue())[0] == TEMPLATE_HEADERS
    assert [r[0] for r in _rows(out.getvalue())[1:]] == ["PRJ-DUR-0001"]
    assert "PRJ-DUR-0002 left out: Dataset(s) name" in err.getvalue()

    target = tmp_path / "dur.json"
    call_command("export_dur", "--format", "json", "--output", str(target), stdout=io.StringIO(), stderr=err)
    assert [e["project_id_text"] for e in json.loads(target.read_text())["data_uses"]] == ["PRJ-DUR-0001"]


def test_export_dur_refuses_an_unknown_format():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export_dur", "--format", "xlsx")


def test_export_makes_the_same_number_of_queries_however_many_projects(bob, olivia, tre_a):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            dur.export("csv")
        return len(captured)

    for n in range(2):
        make_project(bob, olivia, tre_a, identifier=f"PRJ-DUR-{n:04d}")
    small = queries()
    for n in range(2, 7):
        make_project(bob, olivia, tre_a, identifier=f"PRJ-DUR-{n:04d}")
    assert queries() == small
