"""Held content sealed at rest: a keyring of AES-256-GCM keys, the first of which seals.

An item's bytes, its subject and every notice that quotes them are sealed
before they are stored and opened when read, so the database alone (a dump, a
backup, a replica) reveals no content. A sealed value is `0x01 | 96-bit random
nonce | ciphertext and tag`, stored beside the id of the key that sealed it;
the row's identity is the associated data (`store/sealed.py`), so a value
moved to another row does not open. Every key in the keyring opens what it
sealed, so rotation adds a new first key and reseals at leisure
(`gatekeeper keys`).

The keys come from `quarantine_key_file` or `quarantine_keys`; with neither,
the first process that seals generates the store's own keyring in its data
directory and records where (`store/keyrings.py`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import logging
import os
import re
import secrets
import socket
import stat
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError

from gatekeeper.config import ConfigError, Settings, data_dir
from gatekeeper.store.keyrings import GeneratedKeyring
from gatekeeper.store.models import utcnow

log = logging.getLogger(__name__)

GENERATED = cast(Table, GeneratedKeyring.__table__)
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# The first byte of every sealed value: the format, so a later one can be told apart.
FORMAT = b"\x01"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEADER = (
    "# Gatekeeper quarantine keyring: keep it secret, and back it up apart from the database.\n"
    "# The first key seals new content; every key opens what it sealed (`gatekeeper keys`).\n"
)


class QuarantineError(ConfigError):
    """Content cannot be sealed or opened; the message says why in one line."""


@dataclass(frozen=True)
class QuarantineKey:
    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def new(cls, taken: Sequence[str] = ()) -> QuarantineKey:
        """A random 256-bit key; its id starts with today's date, so ids sort by age."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        while True:
            key_id = f"{stamp}-{secrets.token_hex(3)}"
            if key_id not in taken:
                return cls(key_id, AESGCM.generate_key(bit_length=8 * KEY_BYTES))

    def entry(self) -> str:
        """`ID:KEY`, as the keyring file and `quarantine_keys` hold it."""
        return f"{self.key_id}:{base64.urlsafe_b64encode(self.secret).decode('ascii')}"


class Keyring:
    """Keys by id; the first (primary) seals, every one opens."""

    def __init__(self, keys: Sequence[QuarantineKey]) -> None:
        if not keys:
            raise QuarantineError("a keyring needs at least one key")
        ids = [k.key_id for k in keys]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise QuarantineError(f"the keyring holds key {repeated[0]} twice")
        self.keys = tuple(keys)
        self._ciphers = {k.key_id: AESGCM(k.secret) for k in keys}

    @classmethod
    def generate(cls) -> Keyring:
        return cls([QuarantineKey.new()])

    @property
    def primary(self) -> QuarantineKey:
        return self.keys[0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.key_id for k in self.keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._ciphers

    def seal(self, data: bytes, context: bytes) -> tuple[str, bytes]:
        """(key id, sealed value) of `data` under the primary key, bound to `context`."""
        # A random 96-bit nonce is safe for 2^32 seals per key: decades of mail between rotations.
        nonce = os.urandom(NONCE_BYTES)
        key_id = self.primary.key_id
        return key_id, FORMAT + nonce + self._ciphers[key_id].encrypt(nonce, data, context)

    def open(self, key_id: str, sealed: bytes, context: bytes) -> bytes:
        """What `seal` sealed; `QuarantineError` when the key is missing or the value altered."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise QuarantineError(
                f"content is sealed under key {key_id}, which this keyring lacks "
                f"(it has {', '.join(self.ids)}): every node needs the same keyring"
            )
        value = bytes(sealed)
        if value[:1] != FORMAT or len(value) < 1 + NONCE_BYTES + TAG_BYTES:
            raise QuarantineError(f"a value stored as sealed under key {key_id} is not sealed")
        try:
            return cipher.decrypt(value[1 : 1 + NONCE_BYTES], value[1 + NONCE_BYTES :], context)
        except InvalidTag:
            raise QuarantineError(
                f"content sealed under key {key_id} does not open: it was altered in the"
                " store or moved from another row"
            ) from None

    def with_new_primary(self) -> Keyring:
        """This keyring with a new key in front: it seals from now on, the others still open."""
        return Keyring([QuarantineKey.new(self.ids), *self.keys])

    def without(self, key_id: str) -> Keyring:
        if key_id not in self:
            raise QuarantineError(f"the keyring has no key {key_id} (it has {', '.join(self.ids)})")
        if key_id == self.primary.key_id:
            raise QuarantineError(f"{key_id} is the key that seals: rotate before retiring it")
        return Keyring([k for k in self.keys if k.key_id != key_id])

    def text(self) -> str:
        return _HEADER + "".join(f"{k.entry()}\n" for k in self.keys)

    @classmethod
    def parse(cls, text: str, where: str) -> Keyring:
        """`ID:KEY` entries separated by newlines, commas or spaces; `#` starts a comment."""
        keys = []
        for number, line in enumerate(text.splitlines(), 1):
            for entry in re.split(r"[\s,]+", line.split("#", 1)[0].strip()):
                if entry:
                    keys.append(_parse_entry(entry, f"{where}, line {number}"))
        if not keys:
            raise QuarantineError(f"{where} holds no key")
        try:
            return cls(keys)
        except QuarantineError as exc:
            raise QuarantineError(f"{where}: {exc}") from None


def _parse_entry(entry: str, where: str) -> QuarantineKey:
    key_id, colon, encoded = entry.partition(":")
    if not colon or not _KEY_ID.fullmatch(key_id):
        raise QuarantineError(f"{where}: expected ID:KEY (ID of letters, digits, . _ -)")
    try:
        secret = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        secret = b""
    if len(secret) != KEY_BYTES:
        raise QuarantineError(f"{where}: key {key_id} is not {KEY_BYTES} bytes of base64")
    return QuarantineKey(key_id, secret)


# -- keyring files ----------------------------------------------------------------------------


def read_keyring(path: Path) -> Keyring:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuarantineError(
            f"keyring {path} does not exist (`gatekeeper keys generate {path}` makes one)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise QuarantineError(f"cannot read keyring {path}: {reason}") from None
    if path.stat().st_mode & stat.S_IROTH:
        log.warning("keyring %s is readable by every user: chmod o-r it", path)
    return Keyring.parse(text, str(path))


def write_keyring(path: Path, keyring: Keyring, *, replace: bool = False) -> None:
    """Write `keyring` to `path` atomically, readable by its owner only (a replaced file keeps
    its mode and group). A new file never overwrites one: FileExistsError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(keyring.text())
            out.flush()
            os.fsync(out.fileno())
        if replace:
            old = path.stat()
            os.chmod(temporary, stat.S_IMODE(old.st_mode))
            with contextlib.suppress(PermissionError):  # not in that group: the owner's it is
                os.chown(temporary, -1, old.st_gid)
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails when the file exists, unlike a rename
    finally:
        temporary.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the new name survives a crash too
    finally:
        os.close(folder)


# -- where a program's keys come from -----------------------------------------------------------

# Code that has only the store (register sync, subject access) finds the quarantine the
# program set up for that engine here.
_BOUND: weakref.WeakKeyDictionary[Engine, Quarantine] = weakref.WeakKeyDictionary()


class Quarantine:
    """Seals and opens held content for one store, with the keyring its settings name.

    The keyring is loaded on first use and read again when its file changes (a
    rotation on another node). Components that seal call `prepare()` before they
    write: without configured keys it generates the store's own keyring, which
    takes a transaction of its own.
    """

    def __init__(self, engine: Engine, *, key_file: str = "", keys: str = "") -> None:
        if key_file and keys:
            raise QuarantineError("set quarantine_key_file or quarantine_keys, not both")
        self.engine = engine
        self.key_file = str(Path(key_file).expanduser()) if key_file else ""
        self.keys = keys
        self._lock = threading.Lock()
        self._keyring: Keyring | None = None
        self._path: Path | None = None
        self._mtime = 0.0

    @classmethod
    def for_store(cls, settings: Settings, engine: Engine) -> Quarantine:
        """The quarantine `settings` configure for `engine` (one per engine and configuration)."""
        made = cls(engine, key_file=settings.quarantine_key_file, keys=settings.quarantine_keys)
        bound = _BOUND.get(engine)
        if bound is not None and (bound.key_file, bound.keys) == (made.key_file, made.keys):
            return bound  # its keyring is loaded already
        _BOUND[engine] = made
        return made

    @classmethod
    def of(cls, store: Engine | Connection) -> Quarantine:
        """The quarantine the program set up for this store; else one with no keys configured."""
        engine = store.engine if isinstance(store, Connection) else store
        bound = _BOUND.get(engine)
        if bound is None:
            bound = _BOUND.setdefault(engine, cls(engine))
        return bound

    # -- sealing and opening ------------------------------------------------------------------

    def seal(self, data: bytes, context: bytes) -> tuple[str, bytes]:
        return self.prepare().seal(data, context)

    def open(self, key_id: str, sealed: bytes, context: bytes) -> bytes:
        keyring = self.keyring()
        if key_id not in keyring:
            keyring = self.keyring(reread=True)  # added on another node since it was read
        return keyring.open(key_id, sealed, context)

    # -- the keyring --------------------------------------------------------------------------

    def prepare(self) -> Keyring:
        """The keyring to seal with, generating the store's own when none is configured."""
        return self._current(create=True, reread=False)

    def keyring(self, *, reread: bool = False) -> Keyring:
        """The keyring to open with (never generated: nothing can be sealed under a new one)."""
        return self._current(create=False, reread=reread)

    @property
    def path(self) -> Path | None:
        """The file the keys come from (configured or generated); None for `quarantine_keys`."""
        if self.keys:
            return None
        if self.key_file:
            return Path(self.key_file)
        self.keyring()
        return self._path

    def describe(self) -> str:
        """Where the keys come from, in words."""
        if self.keys:
            return "the quarantine_keys setting"
        if self.key_file:
            return f"the key file {self.key_file}"
        self.keyring()
        return f"{self._path}, generated for this store (no keyring configured)"

    def forget(self) -> None:
        """Read the keyring again on next use (after `gatekeeper keys` rewrote it)."""
        with self._lock:
            self._keyring = None

    def _current(self, *, create: bool, reread: bool) -> Keyring:
        with self._lock:
            if self._keyring is None or ((reread or create) and self._file_changed()):
                self._keyring = self._load(create)
            return self._keyring

    def _file_changed(self) -> bool:
        if self._path is None:
            return False
        try:
            return self._path.stat().st_mtime != self._mtime
        except OSError:
            return False  # gone for now: keep the keys already read

    def _load(self, create: bool) -> Keyring:
        if self.keys:
            return Keyring.parse(self.keys, "quarantine_keys")
        path = Path(self.key_file) if self.key_file else self._generated(create)
        keyring = read_keyring(path)
        self._path, self._mtime = path, path.stat().st_mtime
        return keyring

    def _generated(self, create: bool) -> Path:
        with self.engine.connect() as conn:
            row = conn.execute(select(GENERATED.c.path, GENERATED.c.host)).first()
        if row is None:
            if not create:
                raise QuarantineError(
                    "no keyring is configured (quarantine_key_file or quarantine_keys) and none"
                    " has been generated for this store"
                )
            return self._generate()
        path = Path(row.path)
        if not path.exists():
            raise QuarantineError(
                f"this store's keyring was generated at {row.path} on {row.host}, and this"
                " machine has no such file: copy it here and set quarantine_key_file to it"
                " (every node needs the same keyring)"
            )
        return path

    def _generate(self) -> Path:
        path = (data_dir() / f"quarantine-{secrets.token_hex(4)}.keys").resolve()
        write_keyring(path, Keyring.generate())
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(GENERATED).values(
                        id=1, path=str(path), host=socket.gethostname(), created_at=utcnow()
                    )
                )
        except IntegrityError:
            path.unlink(missing_ok=True)  # another process generated one first: use theirs
            return self._generated(create=False)
        log.warning(
            "generated the keyring %s for this store: back it up apart from the database,"
            " or set quarantine_key_file (`gatekeeper keys generate`)",
            path,
        )
        return path
