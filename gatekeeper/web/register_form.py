"""The register's entry form: what a browser sends, as the typed values `incidents` takes.

Dates and times are typed and shown on the London clock (`datetime-local`
inputs), stored in UTC. Each value that cannot be read is a problem named by
its field, shown beside that field when the form comes back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.datastructures import FormData

from gatekeeper.register.entries import Entry
from gatekeeper.register.incidents import AMENDABLE, SOURCE_FACTS
from gatekeeper.register.years import LONDON, local

MOMENTS = ("occurred_at", "discovered_at", "reported_at")
FLAGS = ("reportable", "reported")
LISTS = ("data_subjects", "case_ids")
TEXT_LIMIT = 10_000
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# What the form for a new entry starts with.
NEW_ENTRY: Mapping[str, Any] = {
    "kind": "incident",
    "channel": "email",
    "cause": "other",
    "category": "IV",
}
_SEPARATORS = re.compile(r"[\s,;]+")


def editable_fields(entry: Entry | None) -> tuple[str, ...]:
    """The fields the form offers: all for an entry people made, not a source's facts."""
    if entry is not None and entry.automatic:
        return tuple(name for name in AMENDABLE if name not in SOURCE_FACTS)
    return AMENDABLE


def parse_form(form: FormData, fields: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(values, problems by field) for the `fields` the form had."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in fields:
        if name in FLAGS:
            values[name] = form.get(name) in ("on", "true", "1", "yes")
        elif name == "data_kinds":
            values[name] = [str(v) for v in form.getlist(name)]
        else:
            raw = str(form.get(name) or "").strip()[:TEXT_LIMIT]
            if name in MOMENTS:
                moment = parse_local(raw)
                if raw and moment is None:
                    problems[name] = "a date and time, as 2026-03-31T23:59"
                values[name] = moment
            elif name in LISTS:
                values[name] = [part for part in _SEPARATORS.split(raw) if part]
            elif name == "people_affected":
                if raw and not raw.isdigit():
                    problems[name] = "a whole number"
                values[name] = int(raw) if raw.isdigit() else None
            else:
                values[name] = raw
    return values, problems


def parse_local(text: str) -> dt.datetime | None:
    """`2026-03-31T23:59` on the London clock, in UTC; None for empty or unreadable text."""
    try:
        naive = dt.datetime.strptime(text[:16], _LOCAL_FORMAT)
    except ValueError:
        return None
    return naive.replace(tzinfo=LONDON).astimezone(dt.UTC)


def form_values(source: Entry | Mapping[str, Any] | None) -> dict[str, Any]:
    """What each input shows: an entry's fields, or what was sent, as form text."""
    if source is None:
        source = {**NEW_ENTRY, "discovered_at": dt.datetime.now(dt.UTC)}
    get = (lambda n: getattr(source, n, None)) if isinstance(source, Entry) else source.get
    shown: dict[str, Any] = {}
    for name in AMENDABLE:
        value = get(name)
        if name in MOMENTS:
            shown[name] = local(value).strftime(_LOCAL_FORMAT) if value else ""
        elif name in LISTS:
            shown[name] = ", ".join(value or ())
        elif name in FLAGS:
            shown[name] = bool(value)
        elif name == "data_kinds":
            shown[name] = list(value or ())
        else:
            shown[name] = "" if value is None else str(value)
    return shown
