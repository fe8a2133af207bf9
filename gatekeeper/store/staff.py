"""Staff account changes an administrator makes: passwords and send-as rights."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, delete, insert, select, update

from gatekeeper.contact import email_key, normalise_email
from gatekeeper.store.correspondence import StaffSendAs
from gatekeeper.store.models import StaffUser


def set_password(engine: Engine, email: str, password_hash: str) -> bool:
    """Store a password hash for `email`; False when there is no such member of staff."""
    with engine.begin() as conn:
        changed = conn.execute(
            update(StaffUser)
            .where(StaffUser.email_key == email_key(email))
            .values(password_hash=password_hash)
        ).rowcount
    return changed == 1


def change_send_as(
    engine: Engine, email: str, added: Iterable[str], removed: Iterable[str]
) -> list[str] | None:
    """Grant and withdraw send-as addresses; returns the list after, or None for no such user."""
    new = [normalise_email(a) for a in added]
    with engine.begin() as conn:
        user_pk = conn.execute(
            select(StaffUser.id).where(StaffUser.email_key == email_key(email))
        ).scalar()
        if user_pk is None:
            return None
        gone = [email_key(a) for a in removed] + [email_key(a) for a in new]
        if gone:
            conn.execute(
                delete(StaffSendAs).where(
                    StaffSendAs.user_pk == user_pk, StaffSendAs.address_key.in_(gone)
                )
            )
        if new:
            unique = {email_key(a): a for a in new}
            conn.execute(
                insert(StaffSendAs),
                [{"user_pk": user_pk, "address_key": k, "address": a} for k, a in unique.items()],
            )
        return list(
            conn.execute(
                select(StaffSendAs.address)
                .where(StaffSendAs.user_pk == user_pk)
                .order_by(StaffSendAs.address_key)
            ).scalars()
        )
