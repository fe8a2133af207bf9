"""Email addresses and postcodes are normalised the same way everywhere."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.contact import InvalidContact, email_key, normalise_email, normalise_postcode

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-."
LOCAL = st.text(alphabet=ATEXT + "é ", min_size=1, max_size=70)
DOMAIN = st.sampled_from(
    ["example.com", "EXAMPLE.net", "Leeds.Example.Gov.UK", "bücher.example", "x", "a..b", "-x.com"]
)


@settings(max_examples=400, deadline=None)
@given(LOCAL, DOMAIN)
def test_normalisation_is_exactly_email_validators(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    try:
        expected: str | None = validate_email(
            address.strip(), check_deliverability=False
        ).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalise_email(address)
    except InvalidContact:
        got = None
    assert got == expected


def test_an_invalid_address_says_why() -> None:
    with pytest.raises(InvalidContact, match="invalid email address 'jane@'"):
        normalise_email("jane@")


def test_letter_case_never_distinguishes_two_addresses() -> None:
    assert email_key(" Jane.Smith@Example.NET ") == email_key("jane.smith@example.net")


@pytest.mark.parametrize(
    ("given_", "expected"),
    [("ls62ab", "LS6 2AB"), (" LS6  2AB ", "LS6 2AB"), ("m1 1aa", "M1 1AA"), ("EC1A1BB", "EC1A 1BB"),
     ("W1A 0AX", "W1A 0AX"), ("gir0aa", "GIR 0AA")],
)  # fmt: skip
def test_uk_postcodes_are_normalised(given_: str, expected: str) -> None:
    assert normalise_postcode(given_) == expected


@pytest.mark.parametrize("bad", ["12345", "LS6", "LS6 2A", "ZZZ9 9ZZ", "LS6 2CI"])
def test_non_uk_postcodes_are_refused(bad: str) -> None:
    with pytest.raises(InvalidContact, match="invalid UK postcode"):
        normalise_postcode(bad)
