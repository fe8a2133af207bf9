"""Contact points: email addresses and UK postcodes, normalised the one way every part uses."""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email


class InvalidContact(ValueError):
    """An email address or postcode that cannot be used; the message says why."""


# RFC 5322 dot-atom with ASCII atext only: for these email-validator returns the
# local part unchanged, so the domain alone needs its (slower) full check.
_ASCII_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@lru_cache(maxsize=65536)
def _normalise_domain(domain: str) -> str:
    return validate_email("x@" + domain, check_deliverability=False).domain


def normalise_email(address: str) -> str:
    """The address as email-validator normalises it (syntax only, no DNS).

    The domain is lower-cased and IDNA-normalised; the local part keeps its case,
    because in principle it is significant. Raises `InvalidContact` with the reason.
    """
    text = address.strip()
    local, at, domain = text.rpartition("@")
    try:
        if at and len(text) <= 254 and len(local) <= 64 and _ASCII_LOCAL.fullmatch(local):
            return f"{local}@{_normalise_domain(domain)}"
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidContact(f"invalid email address {address!r}: {exc}") from None


def email_key(address: str) -> str:
    """The form used to compare addresses: letter case never distinguishes two mailboxes here."""
    return address.strip().casefold()


# Outward code: A9, A99, AA9, AA99, A9A, AA9A; inward: 9AA (no C, I, K, M, O, V).
_POSTCODE = re.compile(r"(GIR|[A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][ABD-HJLNP-UW-Z]{2})")


def normalise_postcode(postcode: str) -> str:
    """`ls62ab`, ` LS6  2AB ` -> `LS6 2AB`. Raises `InvalidContact` for a non-UK postcode."""
    compact = re.sub(r"\s+", "", postcode).upper()
    match = _POSTCODE.fullmatch(compact)
    if not match:
        raise InvalidContact(f"invalid UK postcode {postcode!r}")
    return f"{match.group(1)} {match.group(2)}"


# For finding postcodes inside free text (letters, attachments).
POSTCODE_IN_TEXT = re.compile(
    r"\b(GIR|[A-Z]{1,2}[0-9][A-Z0-9]?)\s?([0-9][ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE
)


def address_key(lines: list[str] | tuple[str, ...], postcode: str = "") -> str:
    """Postal address lines folded for similarity: lower case, single spaces, no punctuation."""
    joined = " ".join(list(lines) + ([postcode] if postcode else []))
    return re.sub(r"[^0-9a-z]+", " ", joined.casefold()).strip()
