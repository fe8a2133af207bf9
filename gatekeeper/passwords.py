"""Staff passwords: argon2id hashes, the one way the relay and the web pages check them."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified against when the account does not exist, so a wrong user name costs the same time.
_DUMMY_HASH = _HASHER.hash("no such account")
MIN_LENGTH = 10


class WeakPassword(ValueError):
    """A password too weak to set; the message says why."""


def hash_password(password: str, *, new: bool = True) -> str:
    """An argon2id hash; a `new` password must be strong enough (a rehash keeps the old one)."""
    if new and len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; takes as long for a missing hash as for a wrong password."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash on next login)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
