"""IRIs and JSON-LD terms of the Five Safes RO-Crate profile.

The RO-Crate JSON-LD contexts (1.1 to 1.3) map every term with a plain string (no type coercion), and
each IRI the profile checks is reached by exactly one term, except ``schema:MediaObject`` which is also
``File``. ``ROCRATE_TERMS`` holds those terms; the tests compare it with the published context files.
"""

from __future__ import annotations

import re

SCHEMA = "http://schema.org/"
DCT = "http://purl.org/dc/terms/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
SHP = "https://w3id.org/shp#"
BIOSCHEMAS = "https://bioschemas.org/"

XSD_STRING = XSD + "string"
XSD_BOOLEAN = XSD + "boolean"
XSD_INTEGER = XSD + "integer"
XSD_DOUBLE = XSD + "double"
RDF_LANG_STRING = RDF + "langString"

PROFILE_0_4 = "https://w3id.org/5s-crate/0.4"
PROFILE_0_5_DRAFT = "https://w3id.org/5s-crate/0.5-DRAFT"
#: Profiles whose rules this package checks (0.5-DRAFT differs from 0.4 only in its version URIs).
SUPPORTED_PROFILES = (PROFILE_0_4, PROFILE_0_5_DRAFT)
PROFILE_NAME = "Five Safes RO-Crate profile"
FIVE_SAFES_PROFILE_PREFIX = "https://w3id.org/5s-crate/"

ROCRATE_1_2 = "https://w3id.org/ro/crate/1.2"
ROCRATE_1_2_CONTEXT = "https://w3id.org/ro/crate/1.2/context"
WORKFLOW_RO_CRATE_1_0 = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
RO_CRATE_ZIP_PROFILE = "https://w3id.org/ro/crate"
SHA512_TERM = "https://www.iana.org/assignments/named-information#sha-512"

POTENTIAL = "http://schema.org/PotentialActionStatus"
ACTIVE = "http://schema.org/ActiveActionStatus"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"
#: ``actionStatus`` values the profile allows; it compares them as plain strings, not as IRIs.
ACTION_STATUSES = (POTENTIAL, ACTIVE, COMPLETED, FAILED)
ENDED_STATUSES = (COMPLETED, FAILED)
STARTED_STATUSES = (ACTIVE, COMPLETED, FAILED)

CHECK_VALUE = SHP + "CheckValue"
VALIDATION_CHECK = SHP + "ValidationCheck"
SIGN_OFF = SHP + "SignOff"
DISCLOSURE_CHECK = SHP + "DisclosureCheck"
GENERATE_CHECK_VALUE = SHP + "GenerateCheckValue"
#: ``additionalType`` values that mark an entity as a review step only a TRE or the portal may record.
REVIEW_STEPS = (CHECK_VALUE, VALIDATION_CHECK, SIGN_OFF, DISCLOSURE_CHECK, GENERATE_CHECK_VALUE)

# Same pattern, and the same prefix match (re.match), as the community profile's context check.
ROCRATE_CONTEXT_RE = re.compile(r"https://w3id\.org/ro/crate/1\.[2-9](-DRAFT)?/context")
# The community profile's patterns, used with search semantics as SHACL's sh:pattern is.
DESCRIPTOR_CONFORMS_RE = re.compile(r"https://w3id\.org/ro/crate/(1\.[2-9](-DRAFT)?)")
WORKFLOW_CRATE_RE = re.compile(r"^https://w3id\.org/workflowhub/workflow-ro-crate")
RFC3339_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.|,][0-9]+)?(Z|z|[+-][0-9]{2}:[0-9]{2})$"
)
#: Any published RO-Crate context (1.0 to 1.x, drafts included): these define the terms below.
ANY_ROCRATE_CONTEXT_RE = re.compile(r"^https?://w3id\.org/ro/crate/(1\.[0-9]+)(-DRAFT)?/context/?$")

_SCHEMA_TERMS = (
    # properties
    "about actionStatus additionalType affiliation agent dateCreated datePublished description distribution "
    "encodingFormat endTime exampleOfWork funding hasPart identifier instrument license location mainEntity "
    "member memberOf mentions name object parentOrganization provider publisher result sameAs "
    "sourceOrganization startTime url value version "
    # classes
    "AssessAction Collection CreateAction CreativeWork DataDownload Dataset DefinedTerm DigitalDocument "
    "DownloadAction Grant MediaObject Organization Person Project PropertyValue SoftwareApplication "
    "UpdateAction"
).split()

#: Terms every RO-Crate context defines identically, as used by the profile's checks.
ROCRATE_TERMS: dict[str, str] = {term: SCHEMA + term for term in _SCHEMA_TERMS} | {
    "File": SCHEMA + "MediaObject",
    "conformsTo": DCT + "conformsTo",
}
#: ``FormalParameter`` moved to the bioschemas ``terms/`` namespace in RO-Crate 1.3; the community
#: profile expects the 1.1/1.2 IRI.
FORMAL_PARAMETER_BY_VERSION = {
    "1.1": BIOSCHEMAS + "FormalParameter",
    "1.2": BIOSCHEMAS + "FormalParameter",
    "1.3": BIOSCHEMAS + "terms/FormalParameter",
}
FORMAL_PARAMETER = BIOSCHEMAS + "FormalParameter"
#: Compact-IRI prefixes the RO-Crate contexts define (e.g. ``dct:conformsTo``, ``schema:name``).
ROCRATE_PREFIXES = {
    "schema": SCHEMA,
    "dct": DCT,
    "rdf": RDF,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "prov": "http://www.w3.org/ns/prov#",
    "pav": "http://purl.org/pav/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "prof": "http://www.w3.org/ns/dx/prof/",
}


def schema(term: str) -> str:
    """The schema.org IRI of ``term`` (``schema("name")`` -> ``http://schema.org/name``)."""
    return SCHEMA + term
