"""The store's tables: Gatekeeper's copy of the case record, and the staff who send and check.

Natural keys (`case_id`, `party_id`, staff `email`) are what the rest of the
system refers to, and what the record's own tables join on: a re-import that
rebuilds a case's parties never breaks a held item or a register entry that
mentions them, and bulk loading needs no generated keys back from the database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    record_hash: Mapped[str] = mapped_column(String(32))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    aliases: Mapped[list[CaseAlias]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseAlias.id"
    )
    parties: Mapped[list[Party]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Party.id"
    )


class CaseAlias(Base):
    __tablename__ = "case_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    alias: Mapped[str] = mapped_column(String(64), index=True)

    case: Mapped[Case] = relationship(back_populates="aliases")


class Party(Base):
    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.case_id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    other_names: Mapped[list[str]] = mapped_column(default=list)
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    organisation: Mapped[str | None] = mapped_column(String(200))
    represents: Mapped[str | None] = mapped_column(String(64))
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    withheld_from: Mapped[list[str]] = mapped_column(default=list)
    contact_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="parties")
    emails: Mapped[list[PartyEmail]] = relationship(
        back_populates="party", cascade="all, delete-orphan", order_by="PartyEmail.id"
    )
    postal_addresses: Mapped[list[PartyPostalAddress]] = relationship(
        back_populates="party", cascade="all, delete-orphan", order_by="PartyPostalAddress.id"
    )


class PartyEmail(Base):
    """A verified address: the only kind that counts as "this party"."""

    __tablename__ = "party_emails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(
        ForeignKey("parties.party_id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(254))
    address_key: Mapped[str] = mapped_column(String(254), index=True)

    party: Mapped[Party] = relationship(back_populates="emails")


class PartyPostalAddress(Base):
    __tablename__ = "party_postal_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    party_id: Mapped[str] = mapped_column(
        ForeignKey("parties.party_id", ondelete="CASCADE"), index=True
    )
    lines: Mapped[list[str]] = mapped_column()
    postcode: Mapped[str] = mapped_column(String(10), index=True)

    party: Mapped[Party] = relationship(back_populates="postal_addresses")


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    roles: Mapped[list[StaffRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="StaffRole.role"
    )

    @property
    def role_names(self) -> list[str]:
        return [r.role for r in self.roles]


class StaffRole(Base):
    __tablename__ = "staff_roles"

    user_pk: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)

    user: Mapped[StaffUser] = relationship(back_populates="roles")


Index("ix_staff_users_team", StaffUser.team)


# The correspondence tables share this metadata; importing them here lets Alembic see them.
from gatekeeper.store import approval, correspondence, letters  # noqa: E402, F401
