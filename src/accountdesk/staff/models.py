"""Back-office users: operator staff and reseller staff bound to one reseller account."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow


class StaffRole(StrEnum):
    admin = "admin"
    csr = "csr"
    approver = "approver"
    reseller_admin = "reseller_admin"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    reseller_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # "" until the invitation is accepted: never matches
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")  # of the console and mails
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # second factor (RFC 6238): the secret sealed by core.crypto, and the last time step used, so a code works once
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def label(self) -> str:
        return self.name or self.email

    @property
    def is_reseller_staff(self) -> bool:
        return self.role == StaffRole.reseller_admin

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None

    @property
    def status(self) -> str:
        """invited (no password chosen yet), active or deactivated."""
        if not self.active:
            return "deactivated"
        return "active" if self.has_password else "invited"


class StaffRecoveryCode(Base):
    """A one-time recovery code of a staff user's second factor, kept as a keyed digest."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
