"""The case-record exchange format (v1, `shared/spec/case-record.md`): one line in, one record out.

Parsing is pure: a line becomes a `CaseRecord` or `StaffRecord`, or raises
`RecordError` with a reason a person can act on. Unknown fields are kept in
`extra` and otherwise ignored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gatekeeper.contact import InvalidContact, normalise_email, normalise_postcode

ROLES = frozenset(
    {
        "child", "applicant", "respondent", "parent", "carer", "guardian", "solicitor",
        "social_worker", "local_authority", "court", "school", "health", "police", "other",
    }
)  # fmt: skip
# Roles that write from an organisation; a confidential address is not withheld from them.
PROFESSIONAL_ROLES = frozenset(
    {"guardian", "social_worker", "local_authority", "court", "school", "health", "police"}
)
CASE_STATUSES = frozenset({"open", "closed"})
STAFF_ROLES = frozenset({"staff", "checker", "governance", "admin"})

_CASE_FIELDS = frozenset({"case_id", "aliases", "status", "parties"})
_PARTY_FIELDS = frozenset(
    {
        "party_id", "role", "name", "other_names", "date_of_birth", "organisation", "represents",
        "emails", "postal_addresses", "confidential", "withheld_from", "contact_allowed",
    }
)  # fmt: skip
_STAFF_FIELDS = frozenset({"email", "name", "roles", "team"})


class RecordError(ValueError):
    """A line that breaks the format; the message is the reason shown to the importer."""


@dataclass(frozen=True, slots=True)
class PostalAddress:
    lines: tuple[str, ...]
    postcode: str

    def as_json(self) -> dict[str, Any]:
        return {"lines": list(self.lines), "postcode": self.postcode}


@dataclass(slots=True)  # not frozen: a million of them are built per import
class PartyRecord:
    party_id: str
    role: str
    name: str
    other_names: tuple[str, ...] = ()
    date_of_birth: dt.date | None = None
    organisation: str | None = None
    represents: str | None = None
    emails: tuple[str, ...] = ()
    postal_addresses: tuple[PostalAddress, ...] = ()
    confidential: bool = False
    withheld_from: tuple[str, ...] = ()
    contact_allowed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CaseRecord:
    case_id: str
    aliases: tuple[str, ...]
    status: str
    parties: tuple[PartyRecord, ...]
    extra: dict[str, Any]
    record_hash: str


@dataclass(frozen=True, slots=True)
class StaffRecord:
    email: str
    name: str
    roles: tuple[str, ...]
    team: str | None
    extra: dict[str, Any]


def _load_object(line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise RecordError("not a JSON object")
    return obj


def _text(obj: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if type(value) is str and value and not value[0].isspace() and not value[-1].isspace():
        return value  # the common case, without the checks below
    if value is None:
        if required:
            raise RecordError(f"{where}missing {key!r}")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_id"):
        value = str(value)  # a case-management export may write numeric ids as numbers
    if not isinstance(value, str):
        raise RecordError(f"{where}{key!r} must be a string")
    value = value.strip()
    if required and not value:
        raise RecordError(f"{where}{key!r} is empty")
    return value or None


def _text_list(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if not value:
        if value is None or value == []:
            return ()
        raise RecordError(f"{where}{key!r} must be a list of strings")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"{where}{key!r} must be a list of strings")
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))


def _flag(obj: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RecordError(f"{where}{key!r} must be true or false")
    return value


def _postal_address(raw: Any, where: str) -> PostalAddress:
    if not isinstance(raw, dict):
        raise RecordError(f"{where}each postal address must be an object with lines and postcode")
    lines = _text_list(raw, "lines", where)
    if not lines:
        raise RecordError(f"{where}a postal address has no lines")
    postcode = _text(raw, "postcode", where, required=True)
    assert postcode is not None
    try:
        return PostalAddress(lines, normalise_postcode(postcode))
    except InvalidContact as exc:
        raise RecordError(f"{where}{exc}") from None


def _party(raw: Any, index: int) -> PartyRecord:
    if not isinstance(raw, dict):
        raise RecordError(f"party {index + 1} is not an object")
    party_id = _text(raw, "party_id", f"party {index + 1}: ", required=True)
    assert party_id is not None
    where = f"party {party_id}: "
    role = _text(raw, "role", where, required=True)
    if role not in ROLES:
        raise RecordError(
            f"{where}unknown role {role!r} (expected one of {', '.join(sorted(ROLES))})"
        )
    name = _text(raw, "name", where, required=True)
    assert name is not None
    dob_text = _text(raw, "date_of_birth", where)
    try:
        dob = dt.date.fromisoformat(dob_text) if dob_text else None
    except ValueError:
        raise RecordError(f"{where}date_of_birth {dob_text!r} is not an ISO date") from None
    emails: list[str] = []
    for address in _text_list(raw, "emails", where):
        try:
            normalised = normalise_email(address)
        except InvalidContact as exc:
            raise RecordError(f"{where}{exc}") from None
        if normalised not in emails:
            emails.append(normalised)
    raw_addresses = raw.get("postal_addresses") or []
    if not isinstance(raw_addresses, list):
        raise RecordError(f"{where}'postal_addresses' must be a list")
    return PartyRecord(
        party_id=party_id,
        role=role,
        name=name,
        other_names=_text_list(raw, "other_names", where),
        date_of_birth=dob,
        organisation=_text(raw, "organisation", where),
        represents=_text(raw, "represents", where),
        emails=tuple(emails),
        postal_addresses=tuple(_postal_address(a, where) for a in raw_addresses),
        confidential=_flag(raw, "confidential", where, False),
        withheld_from=_text_list(raw, "withheld_from", where),
        contact_allowed=_flag(raw, "contact_allowed", where, True),
        extra={k: v for k, v in raw.items() if k not in _PARTY_FIELDS}
        if not raw.keys() <= _PARTY_FIELDS
        else {},
    )


def record_hash(obj: dict[str, Any]) -> str:
    """A fingerprint of the line's content, so an unchanged case is recognised and skipped."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse_case_line(line: str) -> CaseRecord:
    """One line of a case export -> `CaseRecord`, or `RecordError` with the reason."""
    obj = _load_object(line)
    case_id = _text(obj, "case_id", "", required=True)
    assert case_id is not None
    status = _text(obj, "status", "") or "open"
    if status not in CASE_STATUSES:
        raise RecordError(f"unknown status {status!r} (expected open or closed)")
    raw_parties = obj.get("parties")
    if raw_parties is None:
        raise RecordError("missing 'parties'")
    if not isinstance(raw_parties, list):
        raise RecordError("'parties' must be a list")
    parties = tuple(_party(p, i) for i, p in enumerate(raw_parties))
    ids = [p.party_id for p in parties]
    seen: set[str] = set()
    for party_id in ids:
        if party_id in seen:
            raise RecordError(f"duplicate party_id {party_id!r} in case {case_id}")
        seen.add(party_id)
    for party in parties:
        for other in party.withheld_from:
            if other not in seen:
                raise RecordError(
                    f"party {party.party_id}: withheld_from names unknown party {other!r}"
                )
        if party.represents and party.represents not in seen:
            raise RecordError(
                f"party {party.party_id}: represents names unknown party {party.represents!r}"
            )
    return CaseRecord(
        case_id=case_id,
        aliases=tuple(a for a in _text_list(obj, "aliases", "") if a != case_id),
        status=status,
        parties=parties,
        extra={k: v for k, v in obj.items() if k not in _CASE_FIELDS},
        record_hash=record_hash(obj),
    )


def parse_staff_line(line: str) -> StaffRecord:
    """One line of a staff export -> `StaffRecord`, or `RecordError` with the reason."""
    obj = _load_object(line)
    email = _text(obj, "email", "", required=True)
    assert email is not None
    try:
        email = normalise_email(email)
    except InvalidContact as exc:
        raise RecordError(str(exc)) from None
    name = _text(obj, "name", "", required=True)
    assert name is not None
    roles = _text_list(obj, "roles", "") or ("staff",)
    unknown = [r for r in roles if r not in STAFF_ROLES]
    if unknown:
        raise RecordError(
            f"unknown role {unknown[0]!r} (expected one of {', '.join(sorted(STAFF_ROLES))})"
        )
    return StaffRecord(
        email=email,
        name=name,
        roles=tuple(sorted(roles)),
        team=_text(obj, "team", ""),
        extra={k: v for k, v in obj.items() if k not in _STAFF_FIELDS},
    )
