"""A generated, realistic-looking case record and staff list: for the demo, tests and benchmarks.

Deterministic for a given seed. Every name, address and domain is invented;
email domains end in reserved names (`.example`, `example.com`) so nothing
generated can reach a real mailbox.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from gatekeeper.store.models import Case, Party

FIRST_NAMES = (
    "Aaliyah Aaron Abdul Adam Aisha Alan Alex Alice Amara Amelia Amir Amy Andrew Anna Archie "
    "Arjun Ava Barbara Ben Bethany Bilal Bradley Caitlin Callum Carl Caroline Charlie Chloe "
    "Chris Claire Connor Craig Daisy Daniel Darren David Dean Declan Demi Dylan Elijah Ella "
    "Ellie Emily Emma Erin Ethan Evie Fatima Finley Freya Gary George Grace Hannah Harry "
    "Harvey Hassan Hayley Heather Holly Ibrahim Imran Isaac Isabella Isla Jack Jacob Jade "
    "James Jamie Jane Jasmine Jason Jayden Jennifer Jessica Joanne Joe John Jordan Joseph "
    "Joshua Julie Kayleigh Keith Kelly Kevin Kieran Kirsty Laura Lauren Layla Leah Lee Leo "
    "Lewis Liam Lily Lisa Logan Louise Lucy Luke Maisie Maria Mark Martin Mason Matthew Megan "
    "Mia Michael Michelle Mohammed Molly Muhammad Nadia Natalie Nathan Niamh Nicola Noah "
    "Oliver Olivia Oscar Owen Paige Paul Peter Phoebe Poppy Priya Rachel Rebecca Reece Rhys "
    "Riley Robert Rosie Ruby Ryan Samantha Samuel Sarah Scott Shannon Sharon Sophie Stacey "
    "Stephen Steven Stuart Tariq Teresa Thomas Tom Tyler Victoria Wayne William Yasmin Zain "
    "Zara Zoe"
).split()
SURNAMES = (
    "Ahmed Ali Allen Anderson Armstrong Atkinson Bailey Baker Barker Barnes Bell Bennett "
    "Booth Bradley Brooks Brown Burns Butler Campbell Carter Chapman Clark Clarke Cole "
    "Collins Cook Cooper Cox Davies Dawson Dixon Edwards Ellis Evans Fisher Foster Fox Gibson "
    "Graham Gray Green Griffiths Hall Harris Harrison Hart Hill Holmes Hooper Howard Hughes "
    "Hunt Hussain Jackson James Jenkins Johnson Jones Kaur Kelly Kennedy Khan King Knight Lee "
    "Lewis Lloyd Marshall Martin Mason Matthews Miah Miller Mills Mitchell Moore Morgan "
    "Morris Murphy Murray Nelson Owen Palmer Parker Patel Pearson Phillips Powell Price Reid "
    "Reynolds Richards Richardson Roberts Robinson Rogers Rose Russell Saunders Scott Shah "
    "Shaw Simpson Singh Smith Stevens Stewart Taylor Thomas Thompson Turner Walker Walsh Ward "
    "Watson Webb Wells White Wilkinson Williams Wilson Wood Wright Young"
).split()
NICKNAMES = {
    "Thomas": "Tom", "Tom": "Tommy", "William": "Billy", "Robert": "Rob", "Michael": "Mike",
    "Samuel": "Sam", "Joseph": "Joe", "Daniel": "Dan", "Matthew": "Matt", "Christopher": "Chris",
    "Rebecca": "Becky", "Elizabeth": "Liz", "Jennifer": "Jen", "Samantha": "Sam",
    "Victoria": "Vicky", "Nicola": "Nicky", "Stephen": "Steve", "Steven": "Steve",
    "Joshua": "Josh", "Jacob": "Jake", "Oliver": "Ollie", "Charlie": "Charles",
}  # fmt: skip
STREETS = (
    "Mill Lane", "Oak Road", "Church Street", "Station Road", "Park Avenue", "Victoria Road",
    "Green Lane", "Manor Road", "Queens Road", "New Street", "Kings Road", "School Lane",
    "The Crescent", "Grange Road", "Springfield Road", "Highfield Avenue", "Moor Lane",
    "Chapel Street", "Albert Road", "York Road", "Windsor Close", "Beech Grove", "Elm Drive",
    "Willow Way", "Meadow View", "Cedar Court", "Bridge Street", "North Road", "West End",
)  # fmt: skip
# Town, outward-code prefix, district numbers seen in that area.
TOWNS = (
    ("Leeds", "LS", 30), ("Bradford", "BD", 24), ("Wakefield", "WF", 17), ("Huddersfield", "HD", 9),
    ("Halifax", "HX", 7), ("Sheffield", "S", 40), ("York", "YO", 32), ("Harrogate", "HG", 5),
    ("Doncaster", "DN", 40), ("Hull", "HU", 20), ("Manchester", "M", 50), ("Oldham", "OL", 16),
)  # fmt: skip
PERSONAL_DOMAINS = (
    "example.com", "example.net", "example.org", "mailbox.example", "homemail.example",
    "post.example.co.uk", "inbox.example", "netmail.example.co.uk",
)  # fmt: skip
LAW_FIRMS = (
    "Shah & Co Solicitors", "Hartley Rowe LLP", "Northern Family Law", "Bramley Green Solicitors",
    "Kaur Mitchell Solicitors", "Pennine Legal", "Ridings Family Practice", "Calder & Co",
    "Aire Valley Law", "Whitfield Hughes", "Moorside Solicitors", "Castle Chambers Family Team",
)  # fmt: skip
COUNCILS = (
    "Leeds City Council", "Bradford Council", "Wakefield Council", "Kirklees Council",
    "Calderdale Council", "Sheffield City Council", "City of York Council", "Hull City Council",
)  # fmt: skip
INTERNAL_DOMAIN = "gatekeeper.example"
STAFF_TEAMS = ("North", "South", "East", "West", "Postal room", "Governance")


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "-").strip("-")


def _org_domain(organisation: str) -> str:
    words = [w for w in organisation.replace("&", " ").split() if w.lower() not in {"co", "llp"}]
    return "-".join(_slug(w) for w in words[:2]) + "-law.example"


def _council_domain(council: str) -> str:
    return _slug(council.split(maxsplit=1)[0]) + ".example.gov.uk"


def _postcode(rng: random.Random, prefix: str, districts: int) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return (
        f"{prefix}{rng.randint(1, districts)} {rng.randint(1, 9)}"
        f"{rng.choice(letters)}{rng.choice(letters)}"
    )


@dataclass(frozen=True)
class SampleShape:
    """How many of each party a generated case has, on average."""

    children: tuple[int, ...] = (1, 1, 1, 2, 2, 3)  # drawn uniformly
    solicitor_rate: float = 0.8  # each parent is represented this often
    guardian_rate: float = 0.5

    @classmethod
    def lean(cls) -> SampleShape:
        """Five parties a case: a child, two parents, one solicitor, a social worker."""
        return cls(children=(1,), solicitor_rate=0.5, guardian_rate=0.0)


@dataclass
class _Professional:
    name: str
    organisation: str
    email: str
    lines: list[str]
    postcode: str


class SampleRecord:
    """Generates cases (`case_lines`) and staff (`staff_lines`) as JSONL text lines."""

    def __init__(self, seed: int = 1, shape: SampleShape | None = None) -> None:
        self.shape = shape or SampleShape()
        self.rng = random.Random(seed)
        rng = self.rng
        self.solicitors = [
            self._professional(rng.choice(LAW_FIRMS), _org_domain) for _ in range(400)
        ]
        self.social_workers = [
            self._professional(rng.choice(COUNCILS), _council_domain) for _ in range(300)
        ]
        self.guardians = [
            self._professional("Cafcass", lambda _o: "cafcass.example.gov.uk") for _ in range(120)
        ]

    def _person_name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(SURNAMES)

    def _address(self, flats: bool = True) -> tuple[list[str], str]:
        rng = self.rng
        town, prefix, districts = rng.choice(TOWNS)
        street = f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
        flat = flats and rng.random() < 0.2
        lines = [f"Flat {rng.randint(1, 12)}", street, town] if flat else [street, town]
        return lines, _postcode(rng, prefix, districts)

    def _personal_email(self, first: str, last: str) -> str:
        rng = self.rng
        style = rng.randrange(4)
        number = rng.randint(1, 99)
        local = (
            f"{first}.{last}{number}",
            f"{first[0]}.{last}{number}",
            f"{first}{last}{number}",
            f"{last}.{first}{number}",
        )[style].lower()
        return f"{local}@{rng.choice(PERSONAL_DOMAINS)}"

    def _professional(self, organisation: str, domain_of: Any) -> _Professional:
        first, last = self._person_name()
        lines, postcode = self._address(flats=False)
        return _Professional(
            name=f"{first} {last}",
            organisation=organisation,
            email=f"{first[0].lower()}.{last.lower()}@{domain_of(organisation)}",
            lines=[organisation, *lines],
            postcode=postcode,
        )

    def case(self, number: int) -> dict[str, Any]:
        """One case: children, parents, their solicitors, a social worker, perhaps a guardian."""
        rng = self.rng
        case_id = str(100000 + number)
        parties: list[dict[str, Any]] = []

        def pid() -> str:
            return f"{case_id}-P{len(parties) + 1}"

        family = rng.choice(SURNAMES)
        mother_first, father_first = rng.choice(FIRST_NAMES), rng.choice(FIRST_NAMES)
        mother_last = family if rng.random() < 0.6 else rng.choice(SURNAMES)
        for _ in range(rng.choice(self.shape.children)):
            first = rng.choice(FIRST_NAMES)
            child: dict[str, Any] = {
                "party_id": pid(),
                "role": "child",
                "name": f"{first} {family}",
                "date_of_birth": f"{rng.randint(2009, 2024)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}",
                "contact_allowed": False,
            }
            if first in NICKNAMES:
                child["other_names"] = [f"{NICKNAMES[first]} {family}"]
            parties.append(child)
        confidential = rng.random() < 0.12
        applicant_id = pid()
        lines, postcode = self._address()
        applicant: dict[str, Any] = {
            "party_id": applicant_id,
            "role": "applicant",
            "name": f"{mother_first} {mother_last}",
            "emails": [self._personal_email(mother_first, mother_last)],
            "postal_addresses": [{"lines": lines, "postcode": postcode}],
        }
        if mother_last != family:
            applicant["other_names"] = [f"{mother_first} {family}"]
        parties.append(applicant)
        respondent_id = pid()
        lines, postcode = self._address()
        parties.append(
            {
                "party_id": respondent_id,
                "role": "respondent",
                "name": f"{father_first} {family}",
                "emails": [self._personal_email(father_first, family)],
                "postal_addresses": [{"lines": lines, "postcode": postcode}],
            }
        )
        if confidential:
            applicant["confidential"] = True
            applicant["withheld_from"] = [respondent_id]
        for represented in (applicant_id, respondent_id):
            if rng.random() < self.shape.solicitor_rate:
                sol = rng.choice(self.solicitors)
                parties.append(
                    {
                        "party_id": pid(),
                        "role": "solicitor",
                        "name": sol.name,
                        "organisation": sol.organisation,
                        "represents": represented,
                        "emails": [sol.email],
                        "postal_addresses": [{"lines": sol.lines, "postcode": sol.postcode}],
                    }
                )
        for pool, role in ((self.social_workers, "social_worker"), (self.guardians, "guardian")):
            if role == "guardian" and rng.random() >= self.shape.guardian_rate:
                continue
            pro = rng.choice(pool)
            parties.append(
                {
                    "party_id": pid(),
                    "role": role,
                    "name": pro.name,
                    "organisation": pro.organisation,
                    "emails": [pro.email],
                }
            )
        aliases = [f"COM{rng.randint(1000000, 9999999):07d}"]
        if rng.random() < 0.5:
            aliases.append(f"LS{rng.randint(10, 26)}P{rng.randint(10000, 99999)}")
        return {
            "case_id": case_id,
            "aliases": aliases,
            "status": "closed" if rng.random() < 0.1 else "open",
            "parties": parties,
        }

    def case_lines(self, count: int) -> Iterator[str]:
        for number in range(count):
            yield json.dumps(self.case(number), ensure_ascii=False)

    def staff(self, count: int) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        index = 0
        while len(seen) < count:
            first, last = self._person_name()
            email = f"{first[0].lower()}.{last.lower()}@{INTERNAL_DOMAIN}"
            if email in seen:
                continue
            seen.add(email)
            roles = ["staff"]
            if index % 4 == 1:
                roles.append("checker")
            if index % 15 == 2:
                roles = ["governance"]
            if index % 25 == 3:
                roles.append("admin")
            yield {
                "email": email,
                "name": f"{first} {last}",
                "roles": roles,
                "team": STAFF_TEAMS[index % 4] if "governance" not in roles else "Governance",
            }
            index += 1

    def staff_lines(self, count: int) -> Iterator[str]:
        for person in self.staff(count):
            yield json.dumps(person)


def open_case_parents() -> Select[str, str]:
    """Parents (applicant, respondent) of open cases, not confidential, in record order: whom
    the demo's sample mistakes are addressed to. Callers add the contact and its join."""
    return (
        select(Party.case_id, Party.name)
        .join(Case, Case.case_id == Party.case_id)
        .where(
            Party.role.in_(["applicant", "respondent"]),
            Party.confidential.is_(False),
            Case.status == "open",
        )
        .order_by(Party.id)
    )
