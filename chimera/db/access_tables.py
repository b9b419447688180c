"""The tables of people and stops (migration 0008): users, their keys, used request ids, scope stops.

Platform scope (see the migration): the key of a signed request is found before any tenant is known.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chimera.db.models import ID, LONG_ID, Base, UTCDateTime


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ID, doc="the tenant the user acts for; '*' for the fleet's operators")
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(ID)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(ID, nullable=True)


class UserKeyRow(Base):
    __tablename__ = "user_keys"

    key_id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name"))
    public_key: Mapped[str] = mapped_column(ID, doc="base64url of the raw 32-byte Ed25519 public key")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RequestNonceRow(Base):
    """A request id used once per recipient; the attempt that used it tells a retry from a replay."""

    __tablename__ = "request_nonces"

    request_id: Mapped[str] = mapped_column(ID, primary_key=True)
    recipient: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    attempt_key: Mapped[str] = mapped_column(LONG_ID, doc="workflow run and activity id of the first check")
    user_name: Mapped[str] = mapped_column(ID)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScopeStopRow(Base):
    __tablename__ = "scope_stops"

    request_id: Mapped[str] = mapped_column(ID, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    agent_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    stopped_by: Mapped[str] = mapped_column(ID)
    stopped_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(ID, nullable=True)
    lift_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
