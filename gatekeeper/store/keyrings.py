"""Where the keyring generated for this store lives: its path, never a key.

When no keyring is configured, the first process that seals content generates
one in its data directory and records the path here, so every other process on
that machine (another user, another data directory) seals and opens with the
same keys. A node on another machine cannot read the file and says so.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gatekeeper.store.models import Base, utcnow


class GeneratedKeyring(Base):
    """One row at most: the generated keyring file and the host it was made on."""

    __tablename__ = "generated_keyring"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
