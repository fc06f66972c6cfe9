"""Back-office users: operator staff and reseller staff bound to one reseller account."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, String
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
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    @property
    def label(self) -> str:
        return self.name or self.email

    @property
    def is_reseller_staff(self) -> bool:
        return self.role == StaffRole.reseller_admin
