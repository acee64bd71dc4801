"""The HDR UK Data Use Register's lookups: the values its upload template allows.

Project fields use them as choices (portal.models); the register itself (its entries and exports)
is built by transparency.dur. No models are imported here.
"""

from django.db import models

# --- Lookups (the template's allowed values) ---------------------------------------------


class OrganisationSector(models.TextChoices):
    ACADEMIC = "Academic Institute", "Academic Institute"
    CQC_PROVIDER = (
        "CQC Registered Health or/and Social Care provider",
        "CQC registered health or social care provider",
    )
    INDEPENDENT = "Independent Sector Organisation", "Independent sector organisation"
    GOVERNMENT_HEALTH = (
        "Government Agency (Health and Adult Social Care)",
        "Government agency (health and adult social care)",
    )
    COMMERCIAL = "Commercial", "Commercial"
    LOCAL_AUTHORITY = "Local authority", "Local authority"
    GOVERNMENT_OTHER = "Government Agency (Other)", "Government agency (other)"
    OTHER = "Other", "Other"


class RequestCategory(models.TextChoices):
    EFFICACY = "Efficacy & Mechanism Evaluation", "Efficacy and mechanism evaluation"
    SERVICES = "Health Services & Delivery", "Health services and delivery"
    TECHNOLOGY = "Health Technology Assessment", "Health technology assessment"
    PUBLIC_HEALTH = "Public Health Research", "Public health research"
    OTHER = "Other", "Other"


class YesNo(models.TextChoices):
    YES = "Yes", "Yes"
    NO = "No", "No"


class YesNoNotApplicable(models.TextChoices):
    YES = "Yes", "Yes"
    NO = "No", "No"
    NOT_APPLICABLE = "Not applicable", "Not applicable"


class DutyOfConfidentiality(models.TextChoices):
    NOT_APPLICABLE = "Not applicable", "Not applicable"
    CONSENT = "Consent", "Consent"
    SECTION_251 = "Section 251 NHS Act 2006", "Section 251 NHS Act 2006"
    OTHER = "Other", "Other"


class RequestFrequency(models.TextChoices):
    ONE_OFF = "One-off", "One-off"
    RECURRING = "Recurring", "Recurring"


class AccessType(models.TextChoices):
    TRE = "TRE", "Trusted Research Environment"
    RELEASE = "Release", "Release of data"


class SensitivityLevel(models.TextChoices):
    IDENTIFIABLE = "Personally Identifiable", "Personally identifiable"
    DE_PERSONALISED = "De-Personalised", "De-personalised"
    ANONYMOUS = "Anonymous", "Anonymous"


class Article6(models.TextChoices):
    """UK GDPR Article 6(1) bases; stored as a short code, exported as the template's full text."""

    NOT_APPLICABLE = "not_applicable", "Not applicable"
    A = "a", "(a) consent"
    B = "b", "(b) contract"
    C = "c", "(c) legal obligation"
    D = "d", "(d) vital interests"
    E = "e", "(e) public task"
    F = "f", "(f) legitimate interests"


class Article9(models.TextChoices):
    """UK GDPR Article 9(2) conditions; stored as a short code, exported as the template's full text."""

    NOT_APPLICABLE = "not_applicable", "Not applicable"
    A = "a", "(a) explicit consent"
    B = "b", "(b) employment and social security"
    C = "c", "(c) vital interests"
    D = "d", "(d) not-for-profit bodies"
    E = "e", "(e) made public by the data subject"
    F = "f", "(f) legal claims"
    G = "g", "(g) substantial public interest"
    H = "h", "(h) health or social care"
    I = "i", "(i) public health"  # noqa: E741  (the Article's own lettering)
    J = "j", "(j) archiving, research and statistics"


# The template's values, verbatim from the Gateway's lookup lists (including its "(c)processing").
ARTICLE6_TEXT = {
    "not_applicable": "Not applicable",
    "a": "(a) the data subject has given consent to the processing of his or her personal data for one or more specific purposes;",
    "b": "(b) processing is necessary for the performance of a contract to which the data subject is party or in order to take steps at the request of the data subject prior to entering into a contract;",
    "c": "(c)processing is necessary for compliance with a legal obligation to which the controller is subject;",
    "d": "(d) processing is necessary in order to protect the vital interests of the data subject or of another natural person;",
    "e": "(e) processing is necessary for the performance of a task carried out in the public interest or in the exercise of official authority vested in the controller;",
    "f": "(f) processing is necessary for the purposes of the legitimate interests pursued by the controller or by a third party, except where such interests are overridden by the interests or fundamental rights and freedoms of the data subject which require protection of personal data, in particular where the data subject is a child.",
}
ARTICLE9_TEXT = {
    "not_applicable": "Not applicable",
    "a": "(a) the data subject has given explicit consent to the processing of those personal data for one or more specified purposes, except where Union or Member State law provide that the prohibition referred to in paragraph 1 may not be lifted by the data subject;",
    "b": "(b) processing is necessary for the purposes of carrying out the obligations and exercising specific rights of the controller or of the data subject in the field of employment and social security and social protection law in so far as it is authorised by Union or Member State law or a collective agreement pursuant to Member State law providing for appropriate safeguards for the fundamental rights and the interests of the data subject;",
    "c": "(c)processing is necessary to protect the vital interests of the data subject or of another natural person where the data subject is physically or legally incapable of giving consent;",
    "d": "(d) processing is carried out in the course of its legitimate activities with appropriate safeguards by a foundation, association or any other not-for-profit body with a political, philosophical, religious or trade union aim and on condition that the processing relates solely to the members or to former members of the body or to persons who have regular contact with it in connection with its purposes and that the personal data are not disclosed outside that body without the consent of the data subjects;",
    "e": "(e) processing relates to personal data which are manifestly made public by the data subject;",
    "f": "(f) processing is necessary for the establishment, exercise or defence of legal claims or whenever courts are acting in their judicial capacity;",
    "g": "(g) processing is necessary for reasons of substantial public interest, on the basis of Union or Member State law which shall be proportionate to the aim pursued, respect the essence of the right to data protection and provide for suitable and specific measures to safeguard the fundamental rights and the interests of the data subject;",
    "h": "(h) processing is necessary for the purposes of preventive or occupational medicine, for the assessment of the working capacity of the employee, medical diagnosis, the provision of health or social care or treatment or the management of health or social care systems and services on the basis of Union or Member State law or pursuant to contract with a health professional and subject to the conditions and safeguards referred to in paragraph 3;",
    "i": "(i) processing is necessary for reasons of public interest in the area of public health, such as protecting against serious cross-border threats to health or ensuring high standards of quality and safety of health care and of medicinal products or medical devices, on the basis of Union or Member State law which provides for suitable and specific measures to safeguard the rights and freedoms of the data subject, in particular professional secrecy;",
    "j": "(j) processing is necessary for archiving purposes in the public interest, scientific or historical research purposes or statistical purposes in accordance with Article 89(1) based on Union or Member State law which shall be proportionate to the aim pursued, respect the essence of the right to data protection and provide for suitable and specific measures to safeguard the fundamental rights and the interests of the data subject.",
}
