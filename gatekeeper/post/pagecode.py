"""The code stamped on every page of a released letter, and read back at the scan station.

`GK1:K7Q2M9XD:3/5:853206-P3` says: Gatekeeper code format 1, letter ref
K7Q2M9XD, page 3 of 5, addressed to party 853206-P3 (`-` when the addressee
is no party). Short, so the QR code stays small and a scanner reads it fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "GK1"
_CODE = re.compile(r"GK1:([0-9A-Z]{4,16}):(\d{1,4})/(\d{1,4}):([\w.-]{1,64})", re.IGNORECASE)


@dataclass(frozen=True)
class PageCode:
    ref: str
    page: int
    pages: int
    party_id: str | None

    def __str__(self) -> str:
        return f"{PREFIX}:{self.ref}:{self.page}/{self.pages}:{self.party_id or '-'}"

    @classmethod
    def parse(cls, text: str) -> PageCode | None:
        """The code in a scanner's text, or None when it is no page code (or an impossible one)."""
        match = _CODE.fullmatch(text.strip())
        if match is None:
            return None
        ref, page, pages, party = match.groups()
        if not 1 <= int(page) <= int(pages):
            return None
        return cls(ref.upper(), int(page), int(pages), None if party == "-" else party)
