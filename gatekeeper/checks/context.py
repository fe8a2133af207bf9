"""What every check may read about one item: recipients resolved against the record, and
which cases each part of the content is about. Computed once per item, shared by all checks.

Which case a text is about is decided from evidence in it: a case reference
names its case outright; names of the case's lay parties (children, parents,
carers) count when two of them appear, or one whose name few parties in the
whole record carry. Professionals act in many cases, so their names say little.
A name that belongs to a party of the recipients' own case is read as that
party (a common name is not evidence of another case).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from gatekeeper.addressee import DEFAULT_POSTAL_RULE, PostalRule, format_address, match_addressee
from gatekeeper.analysis.mentions import Annotations, Mention, MentionKind, Source, SourceKind
from gatekeeper.casebook import CaseIndex, PartyEntry, PostalMatch, name_key
from gatekeeper.contact import email_key
from gatekeeper.item import Channel, Item, Recipient, RecipientKind

PRIMARY_SOURCES = frozenset({SourceKind.SUBJECT, SourceKind.BODY})
# How far (characters) either side of a name another person of the same case may stand.
_NEARBY = 200
# A name carried by more parties than this is too common to corroborate.
_MAX_CORROBORATED = 50
_TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s+([A-Z][\w'-]+)")
_CAPITALISED = re.compile(r"\b[A-Z][a-z][\w'-]*")


def _partial_names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Capitalised words (possible first names) and titled surnames in `text`, name-keyed."""
    surnames = frozenset(name_key(m.group(1)) for m in _TITLED.finditer(text))
    words = frozenset(name_key(m.group(0)) for m in _CAPITALISED.finditer(text))
    return words, surnames


@dataclass(frozen=True)
class RecipientView:
    """A recipient as the record sees it."""

    recipient: Recipient
    key: str  # the address with letter case folded ("" for a letter's addressee)
    internal: bool
    # Parties whose verified address this exactly is; for a letter, the parties the address
    # block names at one of their own addresses (`gatekeeper.addressee`).
    owners: tuple[PartyEntry, ...]
    postal_matches: tuple[PostalMatch, ...] = ()  # for a letter: parties living at the address

    @property
    def known(self) -> bool:
        return bool(self.owners)

    @property
    def cases(self) -> frozenset[str]:
        return frozenset(p.case_id for p in self.owners)

    @property
    def domain(self) -> str:
        return self.key.rpartition("@")[2]

    @property
    def label(self) -> str:
        return self.recipient.label()


@dataclass
class CaseEvidence:
    """Why a text is thought to be about one case."""

    case_id: str
    references: list[Mention] = field(default_factory=list)
    lay_parties: set[str] = field(default_factory=set)  # party_ids of children, parents, ...
    distinctive: set[str] = field(default_factory=set)  # of those, named by a rare name

    @property
    def strong(self) -> bool:
        return bool(self.references) or len(self.lay_parties) >= 2 or bool(self.distinctive)

    def describe(self, index: CaseIndex) -> str:
        """`case 853206 (reference COM0755749; names Tom Smith, Jane Smith)`."""
        parts = []
        if self.references:
            refs = sorted({m.text for m in self.references})
            parts.append(f"reference {', '.join(refs)}")
        if self.lay_parties:
            names = sorted(index.parties[p].name for p in self.lay_parties)
            parts.append(f"names {', '.join(names)}")
        return f"case {self.case_id}" + (f" ({'; '.join(parts)})" if parts else "")


@dataclass
class CheckContext:
    item: Item
    index: CaseIndex
    annotations: Annotations
    recipients: tuple[RecipientView, ...]
    internal_domains: frozenset[str] = frozenset()
    distinctive_name_parties: int = 2
    lookalike_similarity: float = 88.0
    postal_rule: PostalRule = DEFAULT_POSTAL_RULE

    @classmethod
    def build(
        cls,
        item: Item,
        index: CaseIndex,
        annotations: Annotations,
        *,
        internal_domains: Iterable[str] = (),
        distinctive_name_parties: int = 2,
        lookalike_similarity: float = 88.0,
        postal_rule: PostalRule = DEFAULT_POSTAL_RULE,
    ) -> CheckContext:
        domains = frozenset(d.casefold() for d in internal_domains)
        views = tuple(resolve_recipient(r, index, domains, postal_rule) for r in item.recipients)
        return cls(
            item,
            index,
            annotations,
            views,
            domains,
            distinctive_name_parties,
            lookalike_similarity,
            postal_rule,
        )

    # -- recipients ------------------------------------------------------------------------

    @cached_property
    def external(self) -> tuple[RecipientView, ...]:
        return tuple(r for r in self.recipients if not r.internal)

    @cached_property
    def recipient_cases(self) -> frozenset[str]:
        """Cases any external recipient is a party of."""
        return frozenset(c for r in self.external for c in r.cases)

    @cached_property
    def recipient_parties(self) -> frozenset[str]:
        return frozenset(p.party_id for r in self.external for p in r.owners)

    # -- content ---------------------------------------------------------------------------

    @cached_property
    def evidence(self) -> dict[Source, dict[str, CaseEvidence]]:
        """For each text: the cases it mentions, with the evidence."""
        found: dict[Source, dict[str, CaseEvidence]] = defaultdict(dict)
        for mention in self.annotations:
            per_case = found[mention.source]
            if mention.kind is MentionKind.CASE_REFERENCE:
                entry = per_case.setdefault(mention.value, CaseEvidence(mention.value))
                entry.references.append(mention)
            elif mention.kind is MentionKind.PARTY_NAME:
                self._add_name(per_case, mention)
        return dict(found)

    @cached_property
    def referenced_cases(self) -> frozenset[str]:
        """Cases named outright by a case reference anywhere in the item."""
        return frozenset(m.value for m in self.annotations.of(MentionKind.CASE_REFERENCE))

    def _add_name(self, per_case: dict[str, CaseEvidence], mention: Mention) -> None:
        parties = [self.index.parties[p] for p in mention.party_ids if p in self.index.parties]
        # A name several cases carry is read as the party of a case the item names by
        # reference, else of the recipients' own case, else as any of them.
        referenced = [p for p in parties if p.case_id in self.referenced_cases]
        own = [p for p in parties if p.case_id in self.recipient_cases]
        chosen = referenced or own or parties
        distinctive = len(parties) <= self.distinctive_name_parties
        for party in chosen:
            if party.is_professional:
                continue
            entry = per_case.setdefault(party.case_id, CaseEvidence(party.case_id))
            entry.lay_parties.add(party.party_id)
            if distinctive or (
                party.case_id not in self.recipient_cases
                and len(chosen) <= _MAX_CORROBORATED
                and self._corroborated(party, mention)
            ):
                entry.distinctive.add(party.party_id)

    def _corroborated(self, party: PartyEntry, mention: Mention) -> bool:
        """Whether somebody else of the party's case is named near the mention, by a first
        name ("Leah") or a title and surname ("Miss Reid") that the recipients' own case
        does not explain. Two people of one family together identify it."""
        text = self.text_of(mention.source)
        start = max(0, mention.start - _NEARBY)
        nearby = text[start : mention.end + _NEARBY]
        first_names, surnames = _partial_names(nearby)
        if not first_names and not surnames:
            return False
        own_first, own_last = self._recipient_partial_names
        for other in self.index.case_parties(party.case_id):
            if other.party_id == party.party_id or other.is_professional:
                continue
            for name in other.names:
                words = name_key(name).split()
                if len(words) < 2:
                    continue
                if words[0] in first_names and words[0] not in own_first:
                    return True
                if words[-1] in surnames and words[-1] not in own_last:
                    return True
        return False

    @cached_property
    def _recipient_partial_names(self) -> tuple[frozenset[str], frozenset[str]]:
        """First names and surnames of every party of the recipients' own cases."""
        first: set[str] = set()
        last: set[str] = set()
        for case_id in self.recipient_cases:
            for party in self.index.case_parties(case_id):
                for name in party.names:
                    words = name_key(name).split()
                    if words:
                        first.add(words[0])
                        last.add(words[-1])
        return frozenset(first), frozenset(last)

    def strong_cases(self, kinds: Iterable[SourceKind]) -> dict[str, CaseEvidence]:
        """Cases with strong evidence in texts of these kinds (evidence merged per case)."""
        wanted = set(kinds)
        merged: dict[str, CaseEvidence] = {}
        for source, per_case in self.evidence.items():
            if source.kind not in wanted:
                continue
            for case_id, entry in per_case.items():
                into = merged.setdefault(case_id, CaseEvidence(case_id))
                into.references.extend(entry.references)
                into.lay_parties |= entry.lay_parties
                into.distinctive |= entry.distinctive
        return {c: e for c, e in merged.items() if e.strong}

    @cached_property
    def primary_cases(self) -> dict[str, CaseEvidence]:
        """What the item says it is about: the cases its subject and new text name."""
        return self.strong_cases(PRIMARY_SOURCES)

    @cached_property
    def relevant_cases(self) -> frozenset[str]:
        """The cases whose parties a reader would expect in this item."""
        return frozenset(self.primary_cases) | self.recipient_cases

    @cached_property
    def sensitive(self) -> bool:
        """Whether the item carries special-category data, case details or a party's contact
        details (a postcode or email address the record holds for a party)."""
        return bool(
            self.annotations.special_categories()
            or self.annotations.of(MentionKind.CASE_REFERENCE)
            or any(e.lay_parties for per in self.evidence.values() for e in per.values())
            or self.item.attachments
            or any(
                self.index.parties_at(m.value) for m in self.annotations.of(MentionKind.POSTCODE)
            )
            or any(
                self.index.owners(m.value) for m in self.annotations.of(MentionKind.EMAIL_ADDRESS)
            )
        )

    def text_of(self, source: Source) -> str:
        return self.annotations.texts.get(source, "")

    def named_lay_parties(self) -> set[str]:
        """Lay parties named anywhere in the content (resolved as in `evidence`), and those of
        the item's own cases called by a first name alone ("Tom")."""
        named = {p for per in self.evidence.values() for e in per.values() for p in e.lay_parties}
        first_names: dict[str, set[str]] = {}
        for case_id in self.primary_cases:
            for party in self.index.case_parties(case_id):
                if party.is_professional:
                    continue
                for name in party.names:
                    first = name_key(name).partition(" ")[0]
                    first_names.setdefault(first, set()).add(party.party_id)
        for mention in self.annotations.of(MentionKind.PERSON_NAME):
            key = name_key(mention.text)
            if " " not in key:
                named |= first_names.get(key, set())
        return named

    def party(self, party_id: str) -> PartyEntry | None:
        return self.index.parties.get(party_id)

    def contacts_sentence(self, case_id: str) -> str:
        """`the record's addresses for case 853206 are a@x (Jane Smith), ...`: what was expected."""
        if self.item.channel is Channel.POST:
            return self.postal_contacts_sentence(case_id)
        contacts = self.contacts_of_case(case_id)
        if not contacts:
            return f"the record has no email address for case {case_id}"
        shown = ", ".join(contacts[:4]) + (" and others" if len(contacts) > 4 else "")
        return f"the record's addresses for case {case_id} are {shown}"

    def contacts_of_case(self, case_id: str, lay_only: bool = False) -> list[str]:
        """`jane.smith@example.net (Jane Smith)` for each party of the case with an address
        (for a letter, each postal address)."""
        if self.item.channel is Channel.POST:
            return self.postal_contacts_of_case(case_id, lay_only)
        out = []
        for party in self.index.case_parties(case_id):
            if lay_only and party.is_professional:
                continue
            for address in party.emails:
                out.append(f"{address} ({party.name})")
        return out

    def postal_contacts_of_case(self, case_id: str, lay_only: bool = False) -> list[str]:
        """`3 Oak Road, Bradford BD1 4QQ (Mark Smith)` for each postal address of the case."""
        out = []
        for party in self.index.case_parties(case_id):
            if lay_only and party.is_professional:
                continue
            for postal in party.postal_addresses:
                out.append(f"{format_address(postal.lines, postal.postcode)} ({party.name})")
        return out

    def postal_contacts_sentence(self, case_id: str) -> str:
        """What a letter for the case was expected to be addressed to."""
        contacts = self.postal_contacts_of_case(case_id)
        if not contacts:
            return f"the record has no postal address for case {case_id}"
        shown = "; ".join(contacts[:4]) + (" and others" if len(contacts) > 4 else "")
        return f"the record's postal addresses for case {case_id} are {shown}"


def resolve_recipient(
    recipient: Recipient,
    index: CaseIndex,
    internal_domains: frozenset[str],
    postal_rule: PostalRule = DEFAULT_POSTAL_RULE,
) -> RecipientView:
    if recipient.kind is RecipientKind.POSTAL and recipient.postal is not None:
        match = match_addressee(recipient.postal, index, postal_rule)
        return RecipientView(recipient, "", False, match.owners, match.residents)
    key = email_key(recipient.address or "")
    domain = key.rpartition("@")[2]
    internal = bool(domain) and is_internal_domain(domain, internal_domains)
    owners = () if internal else tuple(index.owners(key))
    return RecipientView(recipient, key, internal, owners)


def is_internal_domain(domain: str, internal_domains: frozenset[str]) -> bool:
    """The organisation's own domain, or a subdomain of it."""
    return any(domain == d or domain.endswith("." + d) for d in internal_domains)


def names_of(parties: Iterable[PartyEntry]) -> str:
    return ", ".join(sorted({p.name for p in parties}))


def describe_party(party: PartyEntry) -> str:
    """`Mark Smith (respondent, case 853206)`."""
    return f"{party.name} ({party.role.replace('_', ' ')}, case {party.case_id})"


def settings_int(settings: Mapping[str, object], key: str, default: int) -> int:
    value = settings.get(key, default)
    return int(value) if isinstance(value, int | float) else default
