import pytest
from django.core.exceptions import ValidationError

from portal.validators import normalise_orcid, normalise_ror_id, validate_sha256


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("052gg0110", "https://ror.org/052gg0110"),
        ("https://ror.org/013meh722", "https://ror.org/013meh722"),
        (" HTTPS://ROR.ORG/02MHBDP94 ", "https://ror.org/02mhbdp94"),
    ],
)
def test_valid_ror_ids_are_normalised(value, expected):
    assert normalise_ror_id(value) == expected


@pytest.mark.parametrize("value", ["052gg0111", "152gg0110", "05ugg0110", "052gg011", "", "https://ror.org/"])
def test_invalid_ror_ids_are_refused(value):
    with pytest.raises(ValidationError):
        normalise_ror_id(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0001-5109-3700", "0000-0001-5109-3700"),
        ("0000-0002-1694-233x", "0000-0002-1694-233X"),
    ],
)
def test_valid_orcids_are_normalised(value, expected):
    assert normalise_orcid(value) == expected


@pytest.mark.parametrize(
    "value", ["0000-0002-1825-0098", "0000-0002-1825-009", "0000000218250097", "abcd-efgh-ijkl-mnop"]
)
def test_invalid_orcids_are_refused(value):
    with pytest.raises(ValidationError):
        normalise_orcid(value)


def test_sha256_must_be_lower_case_hex():
    validate_sha256("a" * 64)
    for bad in ("A" * 64, "a" * 63, "g" * 64):
        with pytest.raises(ValidationError):
            validate_sha256(bad)
