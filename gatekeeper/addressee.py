"""Who a letter's address block names, by the record: the postal rule every letter passes.

The addressee is a party when the postcode is exactly one of the party's, the
address lines agree (every house and flat number the same, the words similar
enough) and the name is the party's own, a known other name, or their
organisation's. Numbers decide: "5 Oak Road" is not "3 Oak Road", however alike
the words. Whoever lives at an address the lines agree with receives the
letter, whatever name is on it; that is what a confidential-address check needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from gatekeeper.casebook import CaseIndex, PartyEntry, PostalMatch, name_key
from gatekeeper.contact import address_key
from gatekeeper.item import PostalAddressee

# Words before a name on an envelope that are no part of it.
TITLES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lady",
     "lord", "rev", "revd", "reverend", "master", "fao", "attn", "the"}
)  # fmt: skip
_NUMBER = re.compile(r"\d+[a-z]?")


@dataclass(frozen=True)
class PostalRule:
    """How alike an address block must be to the record (0-100, rapidfuzz scores)."""

    min_line_similarity: float = 85.0
    min_name_similarity: float = 85.0


DEFAULT_POSTAL_RULE = PostalRule()


@dataclass(frozen=True)
class AddresseeMatch:
    """The record's view of one address block."""

    owners: tuple[PartyEntry, ...]  # name and address both the party's: the verified addressee
    residents: tuple[PostalMatch, ...]  # parties living at the address, whatever the name says


def format_address(lines: Iterable[str], postcode: str | None) -> str:
    """`3 Oak Road, Bradford BD1 4QQ`."""
    text = ", ".join(line.strip() for line in lines if line.strip())
    return f"{text} {postcode}".strip() if postcode else text


def clean_name(name: str) -> list[str]:
    """The words of a name on an envelope, without titles or punctuation: `Mr M. Smith` ->
    [`m`, `smith`]."""
    words = name_key(name).split()
    while words and words[0] in TITLES:
        words = words[1:]
    return words


def house_numbers(lines: Iterable[str]) -> frozenset[str]:
    """The numbers that tell houses and flats apart: `Flat 2, 14 Mill Lane` -> {2, 14}."""
    return frozenset(_NUMBER.findall(address_key(list(lines))))


def lines_similarity(letter: Sequence[str], record: Sequence[str]) -> float:
    """0-100; 0 when the house or flat numbers differ."""
    if house_numbers(letter) != house_numbers(record):
        return 0.0
    wanted = address_key(list(letter))
    if not wanted:
        return 0.0
    return float(fuzz.token_set_ratio(wanted, address_key(list(record))))


def name_similarity(name: str, party: PartyEntry) -> float:
    """0-100: how well an envelope's name fits the party (initials fit their names)."""
    words = clean_name(name)
    if not words:
        return 0.0
    best = 0.0
    if party.organisation:
        organisation = " ".join(clean_name(party.organisation))
        best = float(fuzz.token_set_ratio(" ".join(words), organisation))
    for known in party.names:
        best = max(best, _person_similarity(words, name_key(known).split()))
    return best


def _person_similarity(words: list[str], known: list[str]) -> float:
    if not known:
        return 0.0
    initials = [w for w in words[:-1] if len(w) == 1]
    if initials:  # "M Smith", "M J Smith": the surname must fit and the first initial agree
        if initials[0] != known[0][0] or len(words) < 2:
            return 0.0
        return float(fuzz.ratio(words[-1], known[-1]))
    return float(fuzz.token_sort_ratio(" ".join(words), " ".join(known)))


def match_addressee(postal: PostalAddressee, index: CaseIndex, rule: PostalRule) -> AddresseeMatch:
    """The parties at the address block's address, and those of them it names."""
    if not postal.postcode:
        return AddresseeMatch((), ())
    residents = tuple(
        PostalMatch(m.party, m.address, score)
        for m in index.parties_at(postal.postcode)
        if (score := lines_similarity(postal.lines, m.address.lines)) >= rule.min_line_similarity
    )
    owners = tuple(
        dict.fromkeys(
            m.party
            for m in residents
            if name_similarity(postal.name, m.party) >= rule.min_name_similarity
        )
    )
    ordered = sorted(residents, key=lambda m: -m.similarity)
    return AddresseeMatch(owners, tuple(ordered))


def parties_named(postal: PostalAddressee, index: CaseIndex) -> list[PartyEntry]:
    """Parties anywhere in the record whose name is the one on the envelope (titles aside)."""
    words = clean_name(postal.name)
    return index.parties_named(" ".join(words)) if words else []
