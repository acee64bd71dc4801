"""The HDR UK Data Use Register (DUR): one entry per approved project, in the upload template's columns.

The register is public, so an entry holds public information only: the project's `PUBLIC_FIELDS`, its
sponsor organisation, the publicly listed datasets of the agreements brought into force at the TREs
that approved it, the approval dates, and the DUR-only fields a project records for publication
(read with `getattr`, so this module works before and after those model fields exist). People are
named only if they agreed to be (`Profile.publish_name_in_registers`).

An entry is complete when the template's 7 required fields (the headers ending in "*") are filled;
only complete entries are exported (the Gateway's ACTIVE status) and `check_dur_ready` refuses a
project approval that would leave its entry incomplete.

Column headers, order and the required marks follow the Gateway's template importer
(HDRUK/gateway-api `app/Imports/ImportDurFile.php`); lookup values follow its data-use forms.
The lookups (the template's allowed values) live in `portal.dur_lookups`, so `portal.models` may use
them as choices without importing this module.
"""

import io
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.utils import timezone

from portal import csvexport
from portal.dur_lookups import (  # noqa: F401  (the register's lookups, read as dur.<name>)
    ARTICLE6_TEXT,
    ARTICLE9_TEXT,
    AccessType,
    Article6,
    Article9,
    DutyOfConfidentiality,
    OrganisationSector,
    RequestCategory,
    RequestFrequency,
    SensitivityLevel,
    YesNo,
    YesNoNotApplicable,
)
from portal.models import (
    Accreditation,
    DataAccessAgreement,
    Dataset,
    Decision,
    Membership,
    Project,
    ProjectApproval,
)
from transparency import records

TEXT, DATE, LIST = "text", "date", "list"


@dataclass(frozen=True)
class Column:
    header: str  # exactly as in the template, "*" marking the required ones
    field: str  # the Gateway's API / database field name, used as the JSON key
    kind: str = TEXT

    @property
    def required(self):
        return self.header.endswith("*")

    @property
    def name(self):
        """The header without its required mark, for messages."""
        return self.header.rstrip("*")


COLUMNS = (
    Column("Project ID", "project_id_text"),
    Column("Organisation name*", "organisation_name"),
    Column("Organisation ID", "organisation_id"),
    Column("Organisation sector", "organisation_sector"),
    Column("Applicant name(s)", "non_gateway_applicants", LIST),
    Column("Applicant ID", "applicant_id"),
    Column("Funders/ Sponsors", "funders_and_sponsors", LIST),
    Column("DEA accredited researcher?", "accredited_researcher_status"),
    Column("Sub-licence arrangements (if any)?", "sublicence_arrangements"),
    Column("Project title*", "project_title"),
    Column("Lay summary*", "lay_summary"),
    Column("Public benefit statement*", "public_benefit_statement"),
    Column("Request category type", "request_category_type"),
    Column("Technical summary", "technical_summary"),
    Column("Other approval committees", "other_approval_committees", LIST),
    Column("Project start date", "project_start_date", DATE),
    Column("Project end date", "project_end_date", DATE),
    Column("Latest approval date*", "latest_approval_date", DATE),
    Column("Dataset(s) name*", "non_gateway_datasets", LIST),
    Column("Data sensitivity level", "data_sensitivity_level"),
    Column("Legal basis for provision of data under Article 6", "legal_basis_for_data_article6"),
    Column("Lawful conditions for provision of data under Article 9", "legal_basis_for_data_article9"),
    Column("Common Law Duty of Confidentiality", "duty_of_confidentiality"),
    Column("National data opt-out applied?", "national_data_optout"),
    Column("Request frequency", "request_frequency"),
    Column("For linked datasets, specify how the linkage will take place", "dataset_linkage_description"),
    Column("Description of the confidential data being used", "confidential_data_description"),
    Column("Release/Access date", "access_date", DATE),
    Column("Access type*", "access_type"),
    Column("How has data been processed to enhance privacy?", "privacy_enhancements"),
    Column("Link to research outputs", "non_gateway_outputs", LIST),
)
# What each column means, in plain English, for the public page about the register.
COLUMN_HELP = {
    "project_id_text": "The project's identifier in this portal.",
    "organisation_name": "The organisation responsible for the project (its sponsor).",
    "organisation_id": "The organisation's Research Organization Registry (ROR) identifier.",
    "organisation_sector": "The kind of organisation, for example a university or an NHS body.",
    "non_gateway_applicants": "The researchers, if they have agreed to be named.",
    "applicant_id": "The lead researcher's ORCID identifier, if they have agreed to be named.",
    "funders_and_sponsors": "Who pays for the project and who sponsors it.",
    "accredited_researcher_status": "Whether the lead researcher is accredited under the Digital Economy Act 2017.",
    "sublicence_arrangements": "Whether the data may be shared beyond the parties named in the agreement.",
    "project_title": "The project's title.",
    "lay_summary": "What the project is about, in plain English (at most 300 words).",
    "public_benefit_statement": "How the project's results could benefit the public.",
    "request_category_type": "The broad kind of research.",
    "technical_summary": "A summary for specialists. This portal does not publish it, so the column is empty.",
    "other_approval_committees": "Other bodies that approved the project, such as a research ethics committee.",
    "project_start_date": "When the project starts.",
    "project_end_date": "When the project ends.",
    "latest_approval_date": "The most recent date a TRE approved the project.",
    "non_gateway_datasets": "The datasets the project may analyse.",
    "data_sensitivity_level": "How identifiable the most sensitive data are: personally identifiable, de-personalised or anonymous.",
    "legal_basis_for_data_article6": "The UK GDPR Article 6 lawful basis for using personal data.",
    "legal_basis_for_data_article9": "The UK GDPR Article 9 condition for using special category data, such as health data.",
    "duty_of_confidentiality": "How the common law duty of confidentiality is met, for example by consent or section 251 support.",
    "national_data_optout": "Whether the choices of people who opted out of their health data being used for research were applied.",
    "request_frequency": "Whether the data are provided once or again and again.",
    "dataset_linkage_description": "How datasets are linked together, if they are.",
    "confidential_data_description": "Which identifying details the data contain, if any.",
    "access_date": "When access to the data was first granted.",
    "access_type": "How researchers reach the data: here, inside a Trusted Research Environment (TRE).",
    "privacy_enhancements": "What was done to the data to protect people's privacy.",
    "non_gateway_outputs": "Links to the results the project has published.",
}
HEADERS = tuple(column.header for column in COLUMNS)
REQUIRED = tuple(column for column in COLUMNS if column.required)
LAY_SUMMARY_MAX_WORDS = 300


# Dataset.Sensitivity values to the template's identifiability levels, most sensitive first.
SENSITIVITY_LEVELS = {
    "identifiable": SensitivityLevel.IDENTIFIABLE,
    "pseudonymised": SensitivityLevel.DE_PERSONALISED,
    "deidentified": SensitivityLevel.DE_PERSONALISED,
    "aggregate": SensitivityLevel.ANONYMOUS,
    "synthetic": SensitivityLevel.ANONYMOUS,
}
_LEVEL_RANK = {level: rank for rank, level in enumerate(SensitivityLevel.values)}

# The DUR-only project fields this module reads (see the module docstring).
DUR_ONLY_FIELDS = (
    "organisation_sector",
    "sublicence_arrangements",
    "request_category_type",
    "other_approval_committees",
    "legal_basis_for_data_article6",
    "legal_basis_for_data_article9",
    "duty_of_confidentiality",
    "national_data_optout",
    "request_frequency",
    "dataset_linkage_description",
    "confidential_data_description",
    "access_type",
    "privacy_enhancements",
)


# --- Loading -------------------------------------------------------------------------------


def with_dur_data(queryset):
    """`queryset` of projects with everything an entry reads, in a fixed number of queries."""
    return queryset.select_related("sponsor", "lead__profile").prefetch_related(
        Prefetch(
            "approvals",
            queryset=ProjectApproval.objects.filter(status=Decision.APPROVED).select_related("tre"),
            to_attr="dur_approvals",
        ),
        Prefetch(
            "agreements",
            queryset=DataAccessAgreement.objects.filter(approved_at__isnull=False).prefetch_related(
                Prefetch("datasets", queryset=Dataset.objects.order_by("name"))
            ),
            to_attr="dur_agreements",
        ),
        records.public_outputs_prefetch(),
        Prefetch(
            "memberships",
            queryset=Membership.objects.filter(status=Membership.Status.ACTIVE)
            .select_related("person__profile")
            .order_by("created_at"),
            to_attr="dur_members",
        ),
        Prefetch(
            "lead__accreditations",
            queryset=Accreditation.objects.filter(kind=Accreditation.Kind.ONS_ACCREDITED),
            to_attr="dur_dea_accreditations",
        ),
    )


def dur_projects():
    """Projects approved at one or more TREs (complete or not), loaded for `dur_entry`."""
    return with_dur_data(records.approved_projects()).order_by("identifier")


def _loaded(project):
    """`project` with its entry's data loaded (from the prefetch when it came from `with_dur_data`)."""
    if hasattr(project, "dur_approvals"):
        return project
    loaded = with_dur_data(Project.objects.filter(pk=project.pk)).get()
    for name in DUR_ONLY_FIELDS:  # keep values set on the caller's instance
        if name in vars(project):
            setattr(loaded, name, vars(project)[name])
    return loaded


# --- One entry -----------------------------------------------------------------------------


def _text(value):
    return str(value or "").strip()


def _list(value):
    """A list field's value from a list or from text with one item per line."""
    if isinstance(value, list | tuple):
        items = value
    else:
        items = str(value or "").splitlines()
    return [str(item).strip() for item in items if str(item).strip()]


def _named(user):
    """The name a person agreed to publish, or "" (an e-mail address is never used as a name)."""
    profile = getattr(user, "profile", None)
    if profile is None or not getattr(profile, "publish_name_in_registers", False):
        return ""
    return (profile.display_name or user.get_full_name()).strip()


def _datasets(project):
    approved_tres = {approval.tre_id for approval in project.dur_approvals}
    seen = {}
    for agreement in project.dur_agreements:
        if agreement.tre_id in approved_tres:
            for dataset in agreement.datasets.all():
                seen.setdefault(dataset.pk, dataset)
    return sorted(seen.values(), key=lambda d: d.name.lower())


def _sensitivity(datasets):
    """The most sensitive level among all the data used (a level names no dataset)."""
    levels = [SENSITIVITY_LEVELS[d.sensitivity] for d in datasets if d.sensitivity in SENSITIVITY_LEVELS]
    return min(levels, key=_LEVEL_RANK.__getitem__) if levels else ""


def _dea_status(project, lead_named):
    if not lead_named:
        return ""
    today = timezone.localdate()
    accredited = any(a.is_valid_on(today) for a in project.lead.dur_dea_accreditations)
    return YesNo.YES if accredited else YesNo.NO


def _unique(items):
    return list(dict.fromkeys(item for item in items if item))


def dur_entry(project):
    """The project's entry: {field: value} in template order; dates as `date`, lists as lists."""
    project = _loaded(project)
    datasets = _datasets(project)
    sponsor = project.sponsor
    lead_name = _named(project.lead)
    applicants = _unique([lead_name, *(_named(m.person) for m in project.dur_members)])
    approvals = project.dur_approvals
    granted = [
        a.approved_at
        for a in project.dur_agreements
        if a.tre_id in {approval.tre_id for approval in approvals}
    ]
    lead_profile = getattr(project.lead, "profile", None)
    article6 = _text(getattr(project, "legal_basis_for_data_article6", ""))
    article9 = _text(getattr(project, "legal_basis_for_data_article9", ""))
    values = {
        "project_id_text": project.identifier,
        "organisation_name": sponsor.name if sponsor else "",
        "organisation_id": sponsor.ror_id if sponsor else "",
        "organisation_sector": _text(getattr(project, "organisation_sector", "")),
        "non_gateway_applicants": applicants,
        "applicant_id": lead_profile.orcid_url if lead_name and lead_profile else "",
        "funders_and_sponsors": _unique([_text(project.funder), sponsor.name if sponsor else ""]),
        "accredited_researcher_status": _dea_status(project, lead_name),
        "sublicence_arrangements": _text(getattr(project, "sublicence_arrangements", "")),
        "project_title": _text(project.title),
        "lay_summary": _text(project.lay_summary),
        "public_benefit_statement": _text(project.public_benefit),
        "request_category_type": _text(getattr(project, "request_category_type", "")),
        # Technical summaries are not public (Project.PUBLIC_FIELDS), so the register leaves them out.
        "technical_summary": "",
        "other_approval_committees": _list(getattr(project, "other_approval_committees", "")),
        "project_start_date": project.start_date,
        "project_end_date": project.end_date,
        "latest_approval_date": (
            timezone.localdate(max(a.decided_at for a in approvals)) if approvals else None
        ),
        "non_gateway_datasets": _unique([d.name for d in datasets if d.is_public]),
        "data_sensitivity_level": _sensitivity(datasets),
        "legal_basis_for_data_article6": ARTICLE6_TEXT.get(article6, article6),
        "legal_basis_for_data_article9": ARTICLE9_TEXT.get(article9, article9),
        "duty_of_confidentiality": _text(getattr(project, "duty_of_confidentiality", "")),
        "national_data_optout": _text(getattr(project, "national_data_optout", "")),
        "request_frequency": _text(getattr(project, "request_frequency", "")),
        "dataset_linkage_description": _text(getattr(project, "dataset_linkage_description", "")),
        "confidential_data_description": _text(getattr(project, "confidential_data_description", "")),
        "access_date": timezone.localdate(min(granted)) if granted else None,
        # Every analysis in this federation runs inside a TRE unless a project records otherwise.
        "access_type": _text(getattr(project, "access_type", "")) or AccessType.TRE,
        "privacy_enhancements": _text(getattr(project, "privacy_enhancements", "")),
        "non_gateway_outputs": _unique([o.url for o in records.published_outputs(project)]),
    }
    return {column.field: values[column.field] for column in COLUMNS}


def _is_empty(value):
    return value is None or value == "" or value == []


_HINTS = {
    "organisation_name": "choose the project's sponsor organisation",
    "project_title": "give the project a title",
    "lay_summary": "write the project's lay summary",
    "public_benefit_statement": "write the project's public benefit statement",
    "latest_approval_date": "the project must be approved at a TRE",
    "non_gateway_datasets": (
        "bring into force, at a TRE approving the project, a data-access agreement naming at least "
        "one publicly listed dataset"
    ),
    "access_type": "choose how the data are accessed",
}


def dur_missing_fields(project, entry=None):
    """The template's required fields that the project's entry leaves empty (header names, no "*")."""
    entry = dur_entry(project) if entry is None else entry
    return [column.name for column in REQUIRED if _is_empty(entry[column.field])]


def dur_problems(project, entry=None):
    """Why the entry cannot be published: each missing required field, and an over-long lay summary."""
    entry = dur_entry(project) if entry is None else entry
    problems = [
        f"{column.name}: {_HINTS[column.field]}" for column in REQUIRED if _is_empty(entry[column.field])
    ]
    words = len(entry["lay_summary"].split())
    if words > LAY_SUMMARY_MAX_WORDS:
        problems.append(f"Lay summary: at most {LAY_SUMMARY_MAX_WORDS} words (it has {words})")
    return problems


def check_dur_ready(project):
    """Raise ValidationError unless the project's Data Use Register entry is complete.

    Call it when a TRE approves a project, after the approval is saved and in the same transaction,
    so the approval itself supplies the "Latest approval date" and a refusal rolls it back.
    """
    problems = dur_problems(project)
    if problems:
        raise ValidationError(
            "The project cannot be approved until its Data Use Register entry is complete. "
            + "; ".join(problems)
            + ".",
            code="dur_incomplete",
            params={"missing": dur_missing_fields(project)},
        )


# --- The register --------------------------------------------------------------------------


def register_entries():
    """(entries, skipped): the complete entries in project order, and (identifier, problems) of the rest."""
    entries, skipped = [], []
    for project in dur_projects():
        entry = dur_entry(project)
        problems = dur_problems(project, entry)
        if problems:
            skipped.append((project.identifier, problems))
        else:
            entries.append(entry)
    return entries, skipped


def _csv_cell(column, value):
    if _is_empty(value):
        return ""
    if column.kind == DATE:
        return value.isoformat()
    if column.kind == LIST:
        # The importer splits list cells on "," without trimming, so no space after the comma.
        text = ",".join(value)
    else:
        text = str(value)
    return text  # made safe for spreadsheets by portal.csvexport


def _json_value(column, value):
    if column.kind == LIST:
        return list(value)
    if _is_empty(value):
        return None
    return value.isoformat() if column.kind == DATE else str(value)


def to_csv(entries):
    """The entries as CSV text: the template's header row, then one row per entry."""
    out = io.StringIO()
    writer = csvexport.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for entry in entries:
        writer.writerow([_csv_cell(column, entry[column.field]) for column in COLUMNS])
    return out.getvalue()


def to_json(entries, generated_at=None):
    """The entries as JSON text, keyed by the Gateway's field names in template order."""
    generated_at = generated_at or timezone.now()
    document = {
        "register": "HDR UK Data Use Register",
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "columns": [
            {"header": column.header, "field": column.field, "required": column.required}
            for column in COLUMNS
        ],
        "data_uses": [
            {column.field: _json_value(column, entry[column.field]) for column in COLUMNS}
            for entry in entries
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def export(fmt):
    """(text, skipped) for the whole register in "csv" or "json"; see `register_entries`."""
    entries, skipped = register_entries()
    if fmt == "csv":
        return to_csv(entries), skipped
    if fmt == "json":
        return to_json(entries), skipped
    raise ValueError(f"Unknown Data Use Register format {fmt!r}; use csv or json.")
