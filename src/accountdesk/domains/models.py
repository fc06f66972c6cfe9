"""E-mail domains a company account claims: verified ones let registrants with an address there join the account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow


class AccountDomain(Base):
    __tablename__ = "account_domains"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253))  # lower-case, IDNA (punycode) form
    # published by the claimant as the TXT record "accountdesk-verification=<token>" at the domain
    verification_token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_by: Mapped[str] = mapped_column(String(10), default="")  # dns or staff
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # a domain is verified for one account at most; unverified claims by several accounts may wait side by side
    __table_args__ = (UniqueConstraint("account_id", "domain"),
                      Index("ux_account_domains_verified_domain", "domain", unique=True,
                            postgresql_where=text("verified_at IS NOT NULL"),
                            sqlite_where=text("verified_at IS NOT NULL")))
