"""Sample letters: A4 PDFs laid out as an office's letter template lays them out.

A letterhead at the top right, the address block where a DL window envelope
shows it (25 mm from the left, 50 mm from the top), the date, a salutation,
the body wrapped at the margin, and more pages when the text runs over.
`demo_letters` writes two to try the demo's print queue with: one addressed
as the record has it, one to an address the record does not have.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from sqlalchemy import Engine

from gatekeeper.sample import open_case_parents
from gatekeeper.store.models import Party, PartyPostalAddress

LETTERHEAD = ("Gatekeeper Family Services", "1 City Square", "Leeds LS1 2ES")


def letter_pdf(
    address: Sequence[str],
    body: str,
    *,
    salutation: str,
    pages: int = 1,
    address_at_mm: tuple[float, float] = (25, 50),
    letterhead: Sequence[str] = LETTERHEAD,
    date: str = "3 March 2025",
) -> bytes:
    """A letter: `pages` pages long (the body is repeated on follow-on pages)."""
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    for page in range(1, pages + 1):
        document.setFont("Helvetica", 10)
        if page == 1:
            for number, line in enumerate(letterhead):
                document.drawRightString(width - 20 * mm, height - (15 * mm + number * 12), line)
            left, top = address_at_mm
            for number, line in enumerate(address):
                document.drawString(left * mm, height - (top * mm + number * 12), line)
            y = height - 105 * mm
            document.drawString(25 * mm, y, date)
            y -= 24
            document.drawString(25 * mm, y, salutation)
            y -= 20
        else:
            y = height - 25 * mm
            document.drawString(25 * mm, y, f"Page {page}")
            y -= 20
        for paragraph in body.split("\n"):
            for line in textwrap.wrap(paragraph, 90) or [""]:
                document.drawString(25 * mm, y, line)
                y -= 13
        document.showPage()
    document.save()
    return buffer.getvalue()


@dataclass(frozen=True)
class SampleLetter:
    path: Path
    addressee: str
    verdict: str  # the gate's, as `gatekeeper check letter` says it
    printed: str  # what printing it does, in words


def demo_letters(engine: Engine, folder: Path, sender_name: str) -> list[SampleLetter]:
    """Write the demo's two sample letters to a parent in the record; none when it has none."""
    with engine.connect() as conn:
        row = conn.execute(
            open_case_parents()
            .add_columns(PartyPostalAddress.lines, PartyPostalAddress.postcode)
            .join(PartyPostalAddress, PartyPostalAddress.party_id == Party.party_id)
            .where(Party.contact_allowed.is_(True))
            .limit(1)
        ).first()
    if row is None:
        return []
    case_id, name, lines, postcode = row
    body = (
        f"Re: case {case_id}\n\n"
        "Thank you for meeting me last week. As we agreed, the next meeting will be at the "
        "family centre on the first Tuesday of next month at 10am. Please let me know if that "
        f"time does not suit you.\n\nYours sincerely,\n\n{sender_name}\nFamily Court Adviser"
    )
    folder.mkdir(parents=True, exist_ok=True)
    letters = []
    for filename, address, verdict, printed in (
        ("correct-address.pdf", [*lines, postcode], "RELEASE", "prints, with a code on every page"),
        (
            "wrong-address.pdf",
            [*_another_house(lines), postcode],
            "HOLD",
            "held: the address differs from the record; prints once a checker approves it",
        ),
    ):
        path = folder / filename
        path.write_bytes(
            letter_pdf(
                [name, *address],
                body,
                salutation=f"Dear {name},",
                date=f"{dt.date.today():%-d %B %Y}",
            )
        )
        letters.append(SampleLetter(path, name, verdict, printed))
    return letters


def _another_house(lines: Sequence[str]) -> list[str]:
    """The same street, two doors along: the slip a letter template's autocomplete makes."""
    changed = list(lines)
    for index, line in enumerate(changed):
        number = re.match(r"(\d+)\s", line)
        if number:
            changed[index] = f"{int(number.group(1)) + 2}{line[number.end(1) :]}"
            return changed
    return ["2 The Old Barns", *changed]  # no house number to change: an address it lacks
