"""Who printed a letter: the CUPS job's user name as a member of staff's address.

`a.jones@gatekeeper.example` is taken as it is; with `letters_user_domain`
set, `a.jones` becomes `a.jones@` that domain; otherwise the one active member
of staff whose address's local part is the user name. A name that fits
nobody stays as it is: the letter is still checked, and its sender shows as
the print user in the approval queue.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from gatekeeper.contact import email_key
from gatekeeper.store.models import StaffUser


def staff_address(engine: Engine, user: str, domain: str = "") -> tuple[str, str | None]:
    """(the sender's address, their team) for a CUPS user name."""
    name = user.strip()
    if "@" not in name and domain:
        name = f"{name}@{domain.strip().lstrip('@')}"
    with engine.connect() as conn:
        if "@" in name:
            row = conn.execute(
                select(StaffUser.email, StaffUser.team).where(
                    StaffUser.email_key == email_key(name), StaffUser.active.is_(True)
                )
            ).first()
            return (row.email, row.team) if row else (name, None)
        rows = conn.execute(
            select(StaffUser.email, StaffUser.team).where(
                StaffUser.email_key.startswith(f"{email_key(name)}@", autoescape=True),
                StaffUser.active.is_(True),
            )
        ).all()
    return (rows[0].email, rows[0].team) if len(rows) == 1 else (name, None)
