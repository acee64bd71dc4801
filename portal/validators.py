"""Validators for identifiers the registry stores (ROR, ORCID, checksums) and uploads."""

import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

# ROR ids: 0, then 6 characters of Crockford base32 (no i, l, o, u), then 2 checksum digits.
_ROR_RE = re.compile(r"^(?:https?://ror\.org/)?(0[0-9a-hjkmnp-tv-z]{6}[0-9]{2})$")
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_ORCID_RE = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def normalise_ror_id(value):
    """Return the canonical https://ror.org/0xxxxxxNN form, or raise ValidationError."""
    match = _ROR_RE.match((value or "").strip().lower())
    if not match:
        raise ValidationError(
            "Enter a ROR id such as https://ror.org/02wnqcb97 (9 characters starting with 0).", code="ror"
        )
    ror = match.group(1)
    number = 0
    for char in ror[:7]:
        number = number * 32 + _CROCKFORD.index(char)
    if 98 - (number * 100 % 97) != int(ror[7:]):
        raise ValidationError(
            f"{ror} is not a valid ROR id: its check digits do not match.", code="ror_checksum"
        )
    return f"https://ror.org/{ror}"


def validate_ror_id(value):
    if value:
        normalise_ror_id(value)


def normalise_orcid(value):
    """Return the bare 0000-0000-0000-000X form, or raise ValidationError (ISO 7064 11,2 checksum)."""
    match = _ORCID_RE.match(
        (value or "").strip().upper().replace("HTTPS://ORCID.ORG/", "").replace("HTTP://ORCID.ORG/", "")
    )
    if not match:
        raise ValidationError("Enter an ORCID iD such as 0000-0002-1825-0097.", code="orcid")
    orcid = match.group(1)
    digits = orcid.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    if digits[-1] != expected:
        raise ValidationError(
            f"{orcid} is not a valid ORCID iD: its check digit does not match.", code="orcid_checksum"
        )
    return orcid


def validate_orcid(value):
    if value:
        normalise_orcid(value)


def validate_sha256(value):
    if not _SHA256_RE.match(value or ""):
        raise ValidationError(
            "Enter a SHA-256 checksum: 64 lower-case hexadecimal characters.", code="sha256"
        )


def validate_evidence_file(upload):
    """Evidence uploads: size-limited, and only the document and image types we can show."""
    limit = settings.PORTAL_EVIDENCE_MAX_BYTES
    if upload.size > limit:
        raise ValidationError(
            f"The file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}.",
            code="too_large",
        )
    suffix = Path(upload.name).suffix.lower()
    allowed = settings.PORTAL_EVIDENCE_CONTENT_TYPES
    if suffix not in allowed:
        raise ValidationError(
            f"Upload a {', '.join(sorted(s.lstrip('.').upper() for s in allowed))} file, not {suffix or 'this file type'}.",
            code="file_type",
        )
    head = upload.read(8)
    upload.seek(0)
    magic = {
        "application/pdf": (b"%PDF",),
        "image/png": (b"\x89PNG",),
        "image/jpeg": (b"\xff\xd8\xff",),
    }[allowed[suffix]]
    if not head.startswith(magic):
        raise ValidationError(
            f"The file's content is not a {suffix.lstrip('.').upper()} file.", code="file_content"
        )


OUTPUT_SCHEMA_ROLES = ("labels", "counts", "magnitudes", "statistics")


def validate_output_schemas(value):
    """A workflow's declared table shapes: {file name: {role: [column names]}}, roles as listed."""
    if not isinstance(value, dict):
        raise ValidationError(
            "Give the output schemas as an object keyed by file name.", code="output_schemas"
        )
    for name, shape in value.items():
        if not isinstance(shape, dict) or not shape:
            raise ValidationError(
                f"The schema of {name} must name its columns by role.", code="output_schemas"
            )
        for role, columns in shape.items():
            if role not in OUTPUT_SCHEMA_ROLES:
                raise ValidationError(
                    f"{name}: {role!r} is not a role; use {', '.join(OUTPUT_SCHEMA_ROLES)}.",
                    code="output_schemas",
                )
            if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
                raise ValidationError(
                    f"{name}: {role} must be a list of column names.", code="output_schemas"
                )
