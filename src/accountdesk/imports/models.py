"""The record of every import (who, when, which file, what it did), and the index the import matches accounts'
e-mails through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from accountdesk.accounts.models import Account
from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow
from accountdesk.staff.models import StaffUser
from accountdesk.storefronts.models import Storefront


class ImportStatus:
    uploaded = "uploaded"  # kept server-side, previewed (a dry run), waiting for "Import"
    dry_run = "dry_run"  # a dry run from the command line
    imported = "imported"
    refused = "refused"  # bad rows and not "good rows only": nothing was imported
    cancelled = "cancelled"


class Import(Base):
    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    storefront_id: Mapped[int] = mapped_column(ForeignKey(Storefront.id), index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey(StaffUser.id, ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(320))  # who: a staff e-mail, or the command line's user
    file_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(100), default="")  # the upload kept in the import folder
    status: Mapped[str] = mapped_column(String(20), default=ImportStatus.uploaded)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the last welcome e-mail this import scheduled: the next import's welcomes start after it
    welcome_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# Rows are matched by an account's e-mail on the storefront: one indexed look-up per chunk of rows.
ACCOUNT_EMAIL_INDEX = Index("ix_accounts_storefront_id_email", Account.storefront_id, Account.email)
