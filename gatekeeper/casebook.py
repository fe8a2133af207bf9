"""The case index: the whole case record in memory, answering "who is this?" in microseconds.

Built once per process from the store (and rebuilt after an import). Every
check asks it its questions: which party owns this exact address, which
parties' addresses look like this one, which parties carry this name, who
lives at this postcode, which case a reference names.

Look-alike search does not scan every address. An address is filed under
its local part (to catch a slip in the domain) and under its domain with the
first and with the last three characters of its local part (a single slip in
a local part of seven or more characters leaves one end intact). A shorter
local part is also filed under each of its one-character deletions, which
meet any single slip's own deletions. Only the few addresses filed under the
same keys as the query are scored with rapidfuzz.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, KeysView
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import Engine, Text, cast, select

from gatekeeper.contact import address_key, email_key, normalise_postcode
from gatekeeper.record import PROFESSIONAL_ROLES, PostalAddress
from gatekeeper.store.models import Case, CaseAlias, Party, PartyEmail, PartyPostalAddress

# How many characters at each end of a local part are used as blocking keys.
_BLOCK = 3
# Local parts this short have ends close enough for one slip to change both.
_SHORT_LOCAL = 2 * _BLOCK + 1
# A party's own representatives may see what is withheld from the other side.
_REPRESENTATIVE_ROLES = frozenset({"solicitor"})


@dataclass(frozen=True, slots=True)
class PartyEntry:
    """A party as the checks see it, with the withheld-from list already worked out."""

    party_id: str
    case_id: str
    role: str
    name: str
    other_names: tuple[str, ...]
    organisation: str | None
    represents: str | None
    emails: tuple[str, ...]
    postal_addresses: tuple[PostalAddress, ...]
    confidential: bool
    withheld_from: frozenset[str]
    contact_allowed: bool
    date_of_birth: dt.date | None = None

    @property
    def is_professional(self) -> bool:
        return self.role in PROFESSIONAL_ROLES or self.role in _REPRESENTATIVE_ROLES

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.other_names)


@dataclass(frozen=True, slots=True)
class CaseEntry:
    case_id: str
    aliases: tuple[str, ...]
    status: str
    party_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """A verified address similar to the one asked about, and whose it is."""

    address: str
    similarity: float
    parties: tuple[PartyEntry, ...]


@dataclass(frozen=True, slots=True)
class PostalMatch:
    party: PartyEntry
    address: PostalAddress
    similarity: float


_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=1 << 16)  # the same party names are keyed for every message
def name_key(name: str) -> str:
    """Names compared without case, accents, punctuation or extra spaces: "O'Brien" = "o brien"."""
    if not name.isascii():
        decomposed = unicodedata.normalize("NFKD", name)
        name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(name.casefold()))


def _as_text(column: Any) -> Any:
    """A JSON column read as its stored text, so the common empty list costs no decoding."""
    return cast(column, Text)


def _json_tuple(text: str | None) -> tuple[str, ...]:
    if not text or text == "[]":
        return ()
    return tuple(json.loads(text))


def _deletions(local: str) -> set[str]:
    """The local part itself and every way of deleting one character from it."""
    return {local, *(local[:i] + local[i + 1 :] for i in range(len(local)))}


def _split(address_key_: str) -> tuple[str, str]:
    local, _, domain = address_key_.rpartition("@")
    return local, domain


def effective_withheld_from(
    party_id: str,
    confidential: bool,
    withheld_from: Iterable[str],
    case_parties: Iterable[tuple[str, str, str | None]],
) -> frozenset[str]:
    """Who must never receive this party's contact details (spec: `confidential`, `withheld_from`).

    `case_parties` is (party_id, role, represents) for every party of the case.
    An explicit list is taken as written; `confidential` with no list means every
    party except the party themself, their own solicitor, the court and the
    case's professionals.
    """
    listed = frozenset(withheld_from)
    if listed or not confidential:
        return listed
    return frozenset(
        other_id
        for other_id, role, represents in case_parties
        if other_id != party_id
        and role not in PROFESSIONAL_ROLES
        and not (role in _REPRESENTATIVE_ROLES and represents == party_id)
    )


@dataclass
class CaseIndex:
    """In-memory index over the case record; see the module docstring for what it answers."""

    parties: dict[str, PartyEntry] = field(default_factory=dict)
    cases: dict[str, CaseEntry] = field(default_factory=dict)
    _by_reference: dict[str, str] = field(default_factory=dict)
    _by_address: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _as_recorded: dict[str, str] = field(default_factory=dict)
    _by_local: dict[str, list[str]] = field(default_factory=dict)
    _by_domain_start: dict[str, list[str]] = field(default_factory=dict)
    _by_domain_end: dict[str, list[str]] = field(default_factory=dict)
    _by_domain_deletion: dict[str, list[str]] = field(default_factory=dict)
    _by_name: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _by_postcode: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    _lay_domains: set[str] = field(default_factory=set)
    _professional_domains: set[str] = field(default_factory=set)
    longest_name_words: int = 0

    # -- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, parties: Iterable[PartyEntry], cases: Iterable[CaseEntry]) -> CaseIndex:
        index = cls()
        for case in cases:
            index.cases[case.case_id] = case
            for reference in (case.case_id, *case.aliases):
                index._by_reference.setdefault(reference.casefold(), case.case_id)
        by_address: dict[str, list[str]] = defaultdict(list)
        by_name: dict[str, list[str]] = defaultdict(list)
        by_postcode: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for party in parties:
            index.parties[party.party_id] = party
            domains = index._professional_domains if party.is_professional else index._lay_domains
            for address in party.emails:
                key = email_key(address)
                by_address[key].append(party.party_id)
                index._as_recorded.setdefault(key, address)
                domains.add(key.rpartition("@")[2])
            for name in party.names:
                key = name_key(name)
                if key:
                    by_name[key].append(party.party_id)
                    index.longest_name_words = max(index.longest_name_words, key.count(" ") + 1)
            for position, postal in enumerate(party.postal_addresses):
                by_postcode[postal.postcode].append((party.party_id, position))
        index._by_address = {k: tuple(dict.fromkeys(v)) for k, v in by_address.items()}
        index._by_name = {k: tuple(dict.fromkeys(v)) for k, v in by_name.items()}
        index._by_postcode = {k: tuple(v) for k, v in by_postcode.items()}
        for key in index._by_address:
            local, domain = _split(key)
            index._by_local.setdefault(local, []).append(key)
            index._by_domain_start.setdefault(f"{domain}\0{local[:_BLOCK]}", []).append(key)
            index._by_domain_end.setdefault(f"{domain}\0{local[-_BLOCK:]}", []).append(key)
            if len(local) < _SHORT_LOCAL:
                for variant in _deletions(local):
                    index._by_domain_deletion.setdefault(f"{domain}\0{variant}", []).append(key)
        return index

    @classmethod
    def from_store(cls, engine: Engine) -> CaseIndex:
        """Read the whole case record from the store into a new index.

        Parties are streamed, not loaded as one list: with a million of them the
        rows alone would double the peak memory.
        """
        emails: dict[str, list[str]] = defaultdict(list)
        postal: dict[str, list[PostalAddress]] = defaultdict(list)
        aliases: dict[str, list[str]] = defaultdict(list)
        members: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
        intern = sys.intern
        with engine.connect() as conn:
            for party_id, address in conn.execute(
                select(PartyEmail.party_id, PartyEmail.address).order_by(PartyEmail.id)
            ):
                emails[party_id].append(address)
            for party_id, lines, postcode in conn.execute(
                select(
                    PartyPostalAddress.party_id,
                    _as_text(PartyPostalAddress.lines),
                    PartyPostalAddress.postcode,
                ).order_by(PartyPostalAddress.id)
            ):
                postal[party_id].append(PostalAddress(_json_tuple(lines), intern(postcode)))
            for case_id, alias in conn.execute(
                select(CaseAlias.case_id, CaseAlias.alias).order_by(CaseAlias.id)
            ):
                aliases[case_id].append(alias)
            case_ids: dict[str, str] = {}
            statuses: dict[str, str] = {}
            for case_id, status in conn.execute(select(Case.case_id, Case.status)):
                case_ids[case_id] = intern(case_id)
                statuses[case_id] = status
            for party_id, case_id, role, represents in conn.execute(
                select(Party.party_id, Party.case_id, Party.role, Party.represents).order_by(
                    Party.id
                )
            ):
                members[case_ids.get(case_id, case_id)].append((party_id, intern(role), represents))
            cases = [
                CaseEntry(
                    case_id=case_id,
                    aliases=tuple(aliases.get(case_id, ())),
                    status=status,
                    party_ids=tuple(p for p, _, _ in members.get(case_id, ())),
                )
                for case_id, status in statuses.items()
            ]
            rows = conn.execution_options(yield_per=20_000).execute(
                select(
                    Party.party_id, Party.case_id, Party.role, Party.name,
                    _as_text(Party.other_names), Party.organisation, Party.represents,
                    Party.confidential, _as_text(Party.withheld_from), Party.contact_allowed,
                    Party.date_of_birth,
                ).order_by(Party.id)
            )  # fmt: skip
            parties = (
                PartyEntry(
                    party_id=party_id,
                    case_id=case_ids.get(case_id, case_id),
                    role=intern(role),
                    name=name,
                    other_names=_json_tuple(other_names),
                    organisation=organisation,
                    represents=represents,
                    emails=tuple(emails.pop(party_id, ())),
                    postal_addresses=tuple(postal.pop(party_id, ())),
                    confidential=bool(confidential),
                    withheld_from=effective_withheld_from(
                        party_id, bool(confidential), _json_tuple(withheld), members[case_id]
                    ),
                    contact_allowed=bool(contact_allowed),
                    date_of_birth=dob,
                )
                for (
                    party_id, case_id, role, name, other_names, organisation, represents,
                    confidential, withheld, contact_allowed, dob,
                ) in rows
            )  # fmt: skip
            return cls.build(parties, cases)

    # -- questions ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.parties)

    def reference_keys(self) -> KeysView[str]:
        """Every reference (case id or alias) as `case_for_reference` looks it up."""
        return self._by_reference.keys()

    def case_for_reference(self, reference: str) -> CaseEntry | None:
        """The case a reference (its `case_id` or any alias) names, letter case ignored."""
        case_id = self._by_reference.get(reference.strip().casefold())
        return self.cases.get(case_id) if case_id else None

    def case_parties(self, case_id: str) -> list[PartyEntry]:
        case = self.cases.get(case_id)
        return [self.parties[p] for p in case.party_ids] if case else []

    def owners(self, address: str) -> list[PartyEntry]:
        """The parties (in any case) whose verified address this exactly is."""
        return [self.parties[p] for p in self._by_address.get(email_key(address), ())]

    def similar_addresses(
        self, address: str, threshold: float = 85.0, limit: int = 5
    ) -> list[AddressMatch]:
        """Verified addresses that look like `address` but are not it, most similar first.

        Similarity is rapidfuzz's `ratio` (0-100) on the whole address, letter case ignored.
        """
        key = email_key(address)
        local, domain = _split(key)
        candidates = set(self._by_local.get(local, ()))
        candidates.update(self._by_domain_start.get(f"{domain}\0{local[:_BLOCK]}", ()))
        candidates.update(self._by_domain_end.get(f"{domain}\0{local[-_BLOCK:]}", ()))
        if len(local) <= _SHORT_LOCAL:
            for variant in _deletions(local):
                candidates.update(self._by_domain_deletion.get(f"{domain}\0{variant}", ()))
        candidates.discard(key)
        if not candidates:
            return []
        scored = process.extract(
            key, list(candidates), scorer=fuzz.ratio, score_cutoff=threshold, limit=limit
        )
        return [
            AddressMatch(
                address=self._as_recorded[found],
                similarity=round(score, 1),
                parties=tuple(self.parties[p] for p in self._by_address[found]),
            )
            for found, score, _ in scored
        ]

    def is_organisation_domain(self, domain: str) -> bool:
        """Whether professionals write from `domain` and no lay party's address is there.

        A council's or a law firm's domain qualifies; a public mail provider that
        a parent also uses does not.
        """
        key = domain.strip().casefold()
        return key in self._professional_domains and key not in self._lay_domains

    def all_addresses(self) -> list[str]:
        """Every verified address (letter case folded), for brute-force comparisons."""
        return list(self._by_address)

    def parties_named(self, name: str) -> list[PartyEntry]:
        """Parties (in all cases) whose name or a known other name is `name`."""
        return [self.parties[p] for p in self._by_name.get(name_key(name), ())]

    def has_name(self, key: str) -> bool:
        """Whether `key` (already passed through `name_key`) is any party's name."""
        return key in self._by_name

    def parties_at(
        self, postcode: str, lines: Iterable[str] = (), threshold: float = 0.0
    ) -> list[PostalMatch]:
        """Parties with a postal address at `postcode`, best match of `lines` first.

        Without `lines` every party at the postcode is returned (similarity 100).
        An unreadable postcode finds nobody.
        """
        try:
            code = normalise_postcode(postcode)
        except ValueError:
            return []
        wanted = address_key(list(lines))
        matches = []
        for party_id, position in self._by_postcode.get(code, ()):
            party = self.parties[party_id]
            postal = party.postal_addresses[position]
            score = fuzz.token_set_ratio(wanted, address_key(postal.lines)) if wanted else 100.0
            if score >= threshold:
                matches.append(PostalMatch(party, postal, round(score, 1)))
        return sorted(matches, key=lambda m: -m.similarity)
