"""One live relay process per node name on a shared store.

A relay's node name keys what it takes back as its own when it starts: the
items it was checking and the deliveries it had leased. Two live processes
under one name (two relays on one machine, both defaulting to the host name)
would each take the other's work back on a restart, and a message would leave
twice. So on PostgreSQL a relay holds a session advisory lock named after its
node (and the store's database and schema) for as long as it runs; a second
process under the same name waits a little, since a killed predecessor's
session takes a moment to end, then refuses to start. SQLite is one machine's
file and needs no such guard beyond distinct names.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time

from sqlalchemy import Connection, Engine, text

from gatekeeper.config import ConfigError

log = logging.getLogger(__name__)

WAIT_SECONDS = 30.0
# The server drops the session of a node that vanished (power cut, network gone) after
# about idle + interval * count seconds, freeing its name for its restart.
_KEEPALIVES = (
    "tcp_keepalives_idle = 10",
    "tcp_keepalives_interval = 5",
    "tcp_keepalives_count = 3",
)


class NodeNameTaken(ConfigError):
    """Another live relay process uses this node name on this store."""


def lock_key(scope: str, node: str) -> int:
    """The advisory lock's 64-bit key for `node` on the store `scope` (database.schema)."""
    digest = hashlib.blake2b(f"gatekeeper-relay\0{scope}\0{node}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class NodeLock:
    def __init__(self, engine: Engine, node: str) -> None:
        self.engine = engine
        self.node = node
        self._conn: Connection | None = None
        self._key: int | None = None

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self, wait: float = WAIT_SECONDS) -> None:
        """Hold the node's name, waiting up to `wait` seconds; raises `NodeNameTaken`."""
        if not self.needed:
            return
        deadline = time.monotonic() + wait
        while not self._try():
            if time.monotonic() >= deadline:
                raise NodeNameTaken(
                    f"another relay process runs as node {self.node!r} on this store:"
                    " give each relay process its own node_name"
                )
            log.info("node name %r is held by another session; waiting", self.node)
            time.sleep(1.0)

    def _try(self) -> bool:
        conn = self.engine.connect()
        try:
            for setting in _KEEPALIVES:
                conn.exec_driver_sql(f"SET {setting}")
            if self._key is None:
                scope = conn.execute(
                    text("SELECT current_database() || '.' || current_schema()")
                ).scalar_one()
                self._key = lock_key(str(scope), self.node)
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
            held = bool(got.scalar_one())
            conn.commit()  # the connection is kept for hours: never idle in a transaction
        except Exception:
            _discard(conn)
            raise
        if not held:
            _discard(conn)  # not back to the pool with this session's settings
            return False
        self._conn = conn
        return True

    def check(self) -> bool:
        """Whether the name is still held; takes it again if the store dropped the session."""
        if not self.needed:
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception:
                self.release()
        try:
            return self._try()
        except Exception as exc:
            log.error("could not take node name %r again: %s", self.node, exc)
            return False

    def release(self) -> None:
        """Let the name go: the session ends, and its advisory lock with it."""
        if self._conn is not None:
            _discard(self._conn)
            self._conn = None


def _discard(conn: Connection) -> None:
    """Close the connection's session itself, rather than return it to the pool."""
    with contextlib.suppress(Exception):
        conn.invalidate()
    with contextlib.suppress(Exception):
        conn.close()
