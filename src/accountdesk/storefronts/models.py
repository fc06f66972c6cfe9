"""A storefront and its registration policy: every setting a merchant can change for one site."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.security import PasswordPolicy


class RegistrationMode(StrEnum):
    open = "open"
    approval = "approval"
    erp_verified = "erp_verified"


class ErpSync(StrEnum):
    on_first_order = "on_first_order"
    on_approval = "on_approval"
    manual = "manual"


class ErpUnreachable(StrEnum):
    deny = "deny"
    allow = "allow"


class Storefront(Base):
    __tablename__ = "storefronts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    reseller_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", use_alter=True), index=True)
    default_language: Mapped[str] = mapped_column(String(8), default="en")
    # the languages its pages offer: the visitor's Accept-Language and the language switcher choose among them (a
    # contact whose own language is not among them still reads pages and e-mails in it); always has the default
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(LANGUAGES))

    # access and self-registration (seed 000, 004)
    anonymous_access: Mapped[bool] = mapped_column(Boolean, default=True)
    self_registration: Mapped[bool] = mapped_column(Boolean, default=True)
    registration_mode: Mapped[str] = mapped_column(String(20), default=RegistrationMode.open)
    # Off: a registration (or a new contact) never signs in from its answer, so the answer is the same for a known
    # e-mail and a new one; on: seed 004's "immediately logged in", which tells a prober which e-mails are new.
    sign_in_after_registration: Mapped[bool] = mapped_column(Boolean, default=False)
    sign_in_text: Mapped[str] = mapped_column(Text, default="")  # in the default language
    sign_in_text_translations: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # {language: text}
    verification_required_before_ordering: Mapped[bool] = mapped_column(Boolean, default=False)
    new_contact_for_existing_account: Mapped[bool] = mapped_column(Boolean, default=True)
    new_contact_requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    invoice_window_days: Mapped[int] = mapped_column(Integer, default=365)
    allow_reseller_registration: Mapped[bool] = mapped_column(Boolean, default=False)

    # defaults for new accounts
    default_payment_method: Mapped[str] = mapped_column(String(20), default="cash")
    default_payment_terms: Mapped[str] = mapped_column(String(40), default="")
    default_prorate_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    default_billing_day: Mapped[int] = mapped_column(Integer, default=1)
    default_partial_charges_invoicing: Mapped[str] = mapped_column(String(20), default="next_invoice")
    default_auto_invoice_email: Mapped[bool] = mapped_column(Boolean, default=True)
    default_currency: Mapped[str] = mapped_column(String(3), default="EUR")
    default_customer_group: Mapped[str] = mapped_column(String(40), default="")
    default_price_group: Mapped[str] = mapped_column(String(40), default="")
    default_rep_code: Mapped[str] = mapped_column(String(40), default="")
    account_number_prefix: Mapped[str] = mapped_column(String(10), default="W")

    # password policy
    password_min_length: Mapped[int] = mapped_column(Integer, default=12)
    password_max_length: Mapped[int] = mapped_column(Integer, default=128)
    password_require_character_classes: Mapped[bool] = mapped_column(Boolean, default=False)
    password_reject_common: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_manual_password: Mapped[bool] = mapped_column(Boolean, default=False)

    # staff notifications for approval requests
    staff_notification_to: Mapped[str] = mapped_column(Text, default="")
    staff_notification_cc: Mapped[str] = mapped_column(Text, default="")
    staff_notification_bcc: Mapped[str] = mapped_column(Text, default="")

    # ERP (seed 002, 004)
    erp_cash_account_code: Mapped[str] = mapped_column(String(40), default="")
    erp_excluded_account_codes: Mapped[str] = mapped_column(Text, default="")
    erp_unreachable_policy: Mapped[str] = mapped_column(String(10), default=ErpUnreachable.deny)
    erp_stale_hours: Mapped[int] = mapped_column(Integer, default=24)
    erp_sync: Mapped[str] = mapped_column(String(20), default=ErpSync.on_first_order)
    inactivity_days: Mapped[int] = mapped_column(Integer, default=90)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    @property
    def takes_registrations(self) -> bool:
        """Self-registration is for anonymous visitors: without anonymous access it is off (seed 000)."""
        return self.self_registration and self.anonymous_access

    @property
    def offered_languages(self) -> list[str]:
        """The languages offered, in the product's order (all of them for a storefront not yet stored)."""
        offered = self.languages or LANGUAGES
        return [code for code in LANGUAGES if code in offered]

    def sign_in_text_in(self, language: str) -> str:
        """The sign-in text in `language`, else in the default language."""
        return (self.sign_in_text_translations or {}).get(language) or self.sign_in_text

    @property
    def password_policy(self) -> PasswordPolicy:
        return PasswordPolicy(
            min_length=self.password_min_length,
            max_length=self.password_max_length,
            require_character_classes=self.password_require_character_classes,
            reject_common=self.password_reject_common,
        )

    @property
    def excluded_account_codes(self) -> set[str]:
        return {c.strip().upper() for c in self.erp_excluded_account_codes.split(",") if c.strip()}

    @staticmethod
    def _addresses(value: str) -> list[str]:
        return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]

    @property
    def staff_notification_addresses(self) -> tuple[list[str], list[str], list[str]]:
        return (self._addresses(self.staff_notification_to), self._addresses(self.staff_notification_cc),
                self._addresses(self.staff_notification_bcc))
