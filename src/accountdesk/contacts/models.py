"""A contact: a person on an account who may sign in to a storefront (a storefront user / login)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accountdesk.accounts.models import Account
from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow


class ContactRole(StrEnum):
    buyer = "buyer"
    account_admin = "account_admin"


class ContactStatus(StrEnum):
    invited = "invited"
    pending_approval = "pending_approval"
    active = "active"
    expired = "expired"
    deactivated = "deactivated"


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    storefront_id: Mapped[int] = mapped_column(ForeignKey("storefronts.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320), index=True)  # stored lower-cased
    phone: Mapped[str] = mapped_column(String(40), default="")
    # the phone as the ERP gave it: it could not be read as a number, so it is kept unchecked until someone edits it
    phone_as_given: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    language: Mapped[str] = mapped_column(String(8), default="en")
    date_format: Mapped[str] = mapped_column(String(12), default="DD/MM/YYYY")
    role: Mapped[str] = mapped_column(String(20), default=ContactRole.buyer)
    status: Mapped[str] = mapped_column(String(20), default=ContactStatus.invited)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    email_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    erp_contact_code: Mapped[str | None] = mapped_column(String(40))
    erp_checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # deactivated by the ERP check at sign-in (signin.erp_check): the next sign-in asks the ERP again
    deactivated_by_erp: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # see Account.legal_hold
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # personal data erased (privacy.service)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("account_id", "storefront_id", "email"),)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def can_sign_in(self) -> bool:
        return self.status == ContactStatus.active and self.password_hash is not None and self.account.is_active
