"""Who is sending: staff accounts checked with argon2, and the addresses each may send as.

aiosmtpd calls an `authenticator` synchronously, on the event loop; an argon2
check takes tens of milliseconds, so the relay's handler provides its own
`auth_PLAIN`/`auth_LOGIN` and runs `StaffDirectory.authenticate` in a thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from gatekeeper.contact import email_key
from gatekeeper.passwords import hash_password, needs_rehash, verify_password
from gatekeeper.store.correspondence import StaffSendAs
from gatekeeper.store.models import StaffRole, StaffUser


@dataclass(frozen=True)
class StaffIdentity:
    """A member of staff as the relay knows them for one session."""

    email: str
    name: str
    team: str | None
    roles: frozenset[str]
    send_as: frozenset[str]  # address keys, their own included

    def may_send_as(self, address: str) -> bool:
        return email_key(address) in self.send_as


class StaffDirectory:
    """Staff accounts in the store: password checks and send-as rights.

    With `cache_seconds`, `identity()` answers from memory for that long: the relay
    looks up a trusted front MTA's sender for every message.
    """

    def __init__(self, engine: Engine, *, cache_seconds: float = 0.0) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, StaffIdentity | None]] = {}

    def authenticate(self, login: str, password: str) -> StaffIdentity | None:
        """The active member of staff `login` names, if `password` is theirs (blocking)."""
        key = email_key(login)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(StaffUser.id, StaffUser.password_hash).where(
                    StaffUser.email_key == key, StaffUser.active.is_(True)
                )
            ).first()
        stored = row.password_hash if row else None
        if not verify_password(stored, password) or row is None or stored is None:
            return None
        if needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(
                    update(StaffUser)
                    .where(StaffUser.id == row.id)
                    .values(password_hash=hash_password(password, new=False))
                )
        return self._lookup(key)  # fresh rights at sign-in, never from the cache

    def identity(self, address: str) -> StaffIdentity | None:
        """The active member of staff whose own address this is, with their rights."""
        key = email_key(address)
        if self.cache_seconds:
            now = time.monotonic()
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            found = self._lookup(key)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, found)
            return found
        return self._lookup(key)

    def remembered(self, address: str) -> tuple[bool, StaffIdentity | None]:
        """(True, what `identity(address)` would answer) when it would answer from memory;
        (False, None) when it would read the store. Never blocks."""
        if self.cache_seconds:
            cached = self._cache.get(email_key(address))
            if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                return True, cached[1]
        return False, None

    def _lookup(self, key: str) -> StaffIdentity | None:
        with self.engine.connect() as conn:
            user = conn.execute(
                select(StaffUser.id, StaffUser.email, StaffUser.name, StaffUser.team).where(
                    StaffUser.email_key == key, StaffUser.active.is_(True)
                )
            ).first()
            if user is None:
                return None
            roles = conn.execute(select(StaffRole.role).where(StaffRole.user_pk == user.id))
            send_as = conn.execute(
                select(StaffSendAs.address_key).where(StaffSendAs.user_pk == user.id)
            )
            return StaffIdentity(
                email=user.email,
                name=user.name,
                team=user.team,
                roles=frozenset(roles.scalars()),
                send_as=frozenset({key, *send_as.scalars()}),
            )
