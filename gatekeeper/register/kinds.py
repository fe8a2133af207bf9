"""The kinds of personal data an item carried, captured when its entry is made.

The gate does not store its special-category mentions per item, and retention
purges the content later, so the sync reads the content once, when the entry
is made: the text of the email (and its attachments) or of the letter, through
the same lexicons the gate uses (`policies/lexicons/`), plus what the findings'
evidence already says. Contact details count when the text carries a postcode
or an email address the record holds for a party other than the recipients,
or a finding is about one (a confidential address, addresses visible to all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, select

from gatekeeper.contact import POSTCODE_IN_TEXT, InvalidContact, email_key, normalise_postcode
from gatekeeper.store.models import PartyEmail, PartyPostalAddress

if TYPE_CHECKING:
    from gatekeeper.analysis.lexicon import LexiconMatcher

PARTY_EMAILS = cast(Table, PartyEmail.__table__)
PARTY_POSTCODES = cast(Table, PartyPostalAddress.__table__)


class DataKind(StrEnum):
    SPECIAL_CATEGORY = "special_category"
    CRIMINAL_OFFENCE = "criminal_offence"
    SAFEGUARDING = "safeguarding"
    CONTACT_DETAILS = "contact_details"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


# Lexicon category -> kind of data (UK GDPR art. 9 special categories, art. 10 offences).
LEXICON_KINDS: Mapping[str, DataKind] = {
    "health": DataKind.SPECIAL_CATEGORY,
    "mental_health": DataKind.SPECIAL_CATEGORY,
    "drugs_alcohol": DataKind.SPECIAL_CATEGORY,
    "ethnicity": DataKind.SPECIAL_CATEGORY,
    "religion": DataKind.SPECIAL_CATEGORY,
    "sexual_life": DataKind.SPECIAL_CATEGORY,
    "criminal": DataKind.CRIMINAL_OFFENCE,
    "safeguarding": DataKind.SAFEGUARDING,
}
# Findings of these checks are about somebody's contact details.
CONTACT_CHECKS = frozenset({"confidential_address_leak", "visible_recipients"})
_EMAIL_IN_TEXT = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_MAX_TEXT = 2_000_000  # characters read per item: the longest letters and reports


@dataclass(frozen=True)
class DataFound:
    kinds: tuple[str, ...]  # DataKind values, in DataKind's order
    special_categories: tuple[str, ...]  # lexicon categories, sorted


def data_found(
    conn: Connection,
    *,
    channel: str,
    raw: bytes | None,
    findings: Sequence[Mapping[str, Any]],
    recipients: Sequence[Mapping[str, Any]],
    envelope_recipients: Sequence[str] = (),
) -> DataFound:
    """What kinds of personal data an item carries, from its content (if kept) and findings."""
    categories: set[str] = set()
    contact = False
    for finding in findings:
        evidence = finding.get("evidence") or {}
        categories.update(str(c) for c in evidence.get("special_categories") or ())
        contact = contact or finding.get("check") in CONTACT_CHECKS
    if raw:
        texts = item_texts(channel, raw)
        categories.update(special_categories_in(texts))
        own_emails = {email_key(str(r.get("address") or "")) for r in recipients}
        own_emails.update(email_key(a) for a in envelope_recipients)
        own_parties = {str(r["party_id"]) for r in recipients if r.get("party_id")}
        contact = contact or carries_party_contacts(conn, texts, own_emails, own_parties)
    kinds = {LEXICON_KINDS[c] for c in categories if c in LEXICON_KINDS}
    if contact:
        kinds.add(DataKind.CONTACT_DETAILS)
    return DataFound(
        kinds=tuple(k.value for k in DataKind if k in kinds),
        special_categories=tuple(sorted(categories)),
    )


def item_texts(channel: str, raw: bytes) -> list[str]:
    """The readable text of an item's stored bytes: an email's parts, or a letter's pages."""
    from gatekeeper.analysis.extract import PDF_MAGIC, extract_pdf_text

    if raw.startswith(PDF_MAGIC):
        text, _problem = extract_pdf_text(raw)
        return [text[:_MAX_TEXT]]
    if channel != "email":
        return []  # a print job in another format: the findings are all there is
    from gatekeeper.analysis.pipeline import Analyzer
    from gatekeeper.mail import item_from_email

    item = item_from_email(raw)
    return [text[:_MAX_TEXT] for text in Analyzer.texts(item).values() if text]


def special_categories_in(texts: Iterable[str]) -> set[str]:
    matcher = _matcher()
    found: set[str] = set()
    for text in texts:
        if not text.strip():
            continue
        postcodes = [m.span() for m in POSTCODE_IN_TEXT.finditer(text)]
        for hit in matcher.find(matcher.nlp.make_doc(text)):
            # "S20 4AB" is a postcode, whatever a lexicon says of "S20" (as the gate reads it).
            if not any(start < hit.end and hit.start < end for start, end in postcodes):
                found.add(hit.category)
    return found


@cache
def _matcher() -> LexiconMatcher:
    import spacy

    from gatekeeper.analysis.lexicon import Lexicons

    # The lexicons match on word forms only, so spaCy's English tokenizer is all they need:
    # no statistical model to load in the web process for this.
    nlp = spacy.blank("en")
    nlp.max_length = _MAX_TEXT + 1
    return Lexicons.load().compile(nlp)


def carries_party_contacts(
    conn: Connection, texts: Sequence[str], own_emails: set[str], own_parties: set[str]
) -> bool:
    """Whether the texts hold a party's postcode or email address, other than the recipients'."""
    postcodes: set[str] = set()
    emails: set[str] = set()
    for text in texts:
        for match in POSTCODE_IN_TEXT.finditer(text):
            try:
                postcodes.add(normalise_postcode(match.group()))
            except InvalidContact:
                continue
        emails.update(email_key(m.group()) for m in _EMAIL_IN_TEXT.finditer(text))
    emails -= own_emails
    if emails:
        query = select(PARTY_EMAILS.c.party_id).where(PARTY_EMAILS.c.address_key.in_(emails))
        if any(p not in own_parties for p in conn.execute(query).scalars()):
            return True
    if postcodes:
        query = select(PARTY_POSTCODES.c.party_id).where(PARTY_POSTCODES.c.postcode.in_(postcodes))
        if any(p not in own_parties for p in conn.execute(query).scalars()):
            return True
    return False
