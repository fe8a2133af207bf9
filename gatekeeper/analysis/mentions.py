"""What analysis finds in an item's text: typed mentions, each with where it was found.

Analysis only annotates; the checks decide what the mentions mean. Every
mention keeps its source (subject, body, quoted text, an attachment) and its
character span, so a finding can show the checker exactly where it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class SourceKind(StrEnum):
    SUBJECT = "subject"
    BODY = "body"  # what the sender wrote now
    QUOTED = "quoted"  # earlier messages quoted in a reply or forward
    ATTACHMENT = "attachment"


@dataclass(frozen=True, slots=True)
class Source:
    kind: SourceKind
    name: str  # "subject", "body", "quoted text", or the attachment's file name

    def __str__(self) -> str:
        return self.name if self.kind is SourceKind.ATTACHMENT else self.kind.value


SUBJECT = Source(SourceKind.SUBJECT, "subject")
BODY = Source(SourceKind.BODY, "body")
QUOTED = Source(SourceKind.QUOTED, "quoted text")


class MentionKind(StrEnum):
    CASE_REFERENCE = "case_reference"  # value: the case_id the reference names
    PARTY_NAME = "party_name"  # value: the name as matched (key form); party_ids: whose
    PERSON_NAME = "person_name"  # value: a person's name that is no party's (statistical NER)
    POSTCODE = "postcode"  # value: the normalised UK postcode
    EMAIL_ADDRESS = "email_address"  # value: the address, letter case folded
    SPECIAL_CATEGORY = "special_category"  # value: the category (health, drugs_alcohol, ...)


# Special-category kinds of data (UK GDPR art. 9 and 10, plus safeguarding).
SPECIAL_CATEGORIES = (
    "health",
    "mental_health",
    "drugs_alcohol",
    "criminal",
    "ethnicity",
    "religion",
    "sexual_life",
    "safeguarding",
)


@dataclass(frozen=True, slots=True)
class Mention:
    kind: MentionKind
    value: str
    text: str  # the text as it stands in the source
    source: Source
    start: int
    end: int
    party_ids: tuple[str, ...] = ()


@dataclass
class Annotations:
    """Every mention found in one item, and the texts they were found in."""

    mentions: list[Mention] = field(default_factory=list)
    texts: dict[Source, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Mention]:
        return iter(self.mentions)

    def of(self, kind: MentionKind, sources: Iterable[SourceKind] | None = None) -> list[Mention]:
        wanted = set(sources) if sources is not None else None
        return [
            m
            for m in self.mentions
            if m.kind is kind and (wanted is None or m.source.kind in wanted)
        ]

    def in_source(self, source: Source) -> list[Mention]:
        return [m for m in self.mentions if m.source == source]

    def special_categories(self) -> set[str]:
        return {m.value for m in self.mentions if m.kind is MentionKind.SPECIAL_CATEGORY}
