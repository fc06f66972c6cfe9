"""Accounts (customers and resellers), their address book, custom attributes and recorded invoices."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow


class AccountKind(StrEnum):
    b2b = "b2b"
    b2c = "b2c"
    reseller = "reseller"


class AccountStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    pending_approval = "pending_approval"
    rejected = "rejected"


class PaymentMethod(StrEnum):
    cash = "cash"
    deposit = "deposit"
    credit_card = "credit_card"
    invoice = "invoice"


class PartialChargesInvoicing(StrEnum):
    next_invoice = "next_invoice"
    immediately = "immediately"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default=AccountKind.b2b)
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.active, index=True)
    storefront_id: Mapped[int | None] = mapped_column(ForeignKey("storefronts.id"), index=True)
    parent_reseller_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    # the phone as the ERP gave it: it could not be read as a number, so it is kept unchecked until someone edits it
    phone_as_given: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    preferred_language: Mapped[str] = mapped_column(String(8), default="en")
    customer_group: Mapped[str] = mapped_column(String(40), default="", index=True)
    price_group: Mapped[str] = mapped_column(String(40), default="")
    rep_code: Mapped[str] = mapped_column(String(40), default="")
    payment_method: Mapped[str] = mapped_column(String(20), default=PaymentMethod.cash)
    payment_terms: Mapped[str] = mapped_column(String(40), default="")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    prorate_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    billing_day: Mapped[int] = mapped_column(Integer, default=1)
    partial_charges_invoicing: Mapped[str] = mapped_column(String(20), default=PartialChargesInvoicing.next_invoice)
    auto_invoice_email: Mapped[bool] = mapped_column(Boolean, default=True)
    order_approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    may_become_reseller: Mapped[bool] = mapped_column(Boolean, default=False)
    # set by staff: the books or a dispute need this account's data, so its contacts' data cannot be erased
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # how a registrant on one of the account's verified e-mail domains joins it (domains.service)
    domain_join: Mapped[str] = mapped_column(String(10), default="approval", server_default="approval")
    erp_code: Mapped[str | None] = mapped_column(String(40), unique=True)
    credit_limit: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    # reseller pricing: a reseller's markup on its customers' orders, overridable per customer
    markup_percent: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("0"), server_default="0")
    markup_override_percent: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    # sum of the active subscriptions' monthly amounts, kept by the subscription service in the same transaction
    monthly_run_rate: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"), server_default="0")
    # lower-cased name, number, e-mails, phone and city, kept up to date by the service for one indexed search
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    addresses: Mapped[list[Address]] = relationship(back_populates="account", order_by="Address.id",
                                                    cascade="all, delete-orphan")

    # the search walks names in order reading search_text from the index alone (INCLUDE on PostgreSQL, a third key
    # column on SQLite), so a common term never visits the table row by row
    __table_args__ = (Index("ix_accounts_name_id", "name", "id", postgresql_include=["search_text"]),
                      Index("ix_accounts_name_id_search_text", "name", "id", "search_text").ddl_if(dialect="sqlite"),
                      # a reseller's grid and its search read only this index (PostgreSQL: index-only scans)
                      Index("ix_accounts_parent_reseller_id_name_id", "parent_reseller_id", "name", "id",
                            postgresql_include=["search_text", "number", "monthly_run_rate"]))

    @property
    def billing_address(self) -> Address | None:
        return next((a for a in self.addresses if a.is_billing), self.addresses[0] if self.addresses else None)

    @property
    def billing_country(self) -> str | None:
        """The billing address's country: a phone number of the account or its contacts typed without its +country
        code is read as one of this country."""
        billing = self.billing_address
        return billing.country if billing else None

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.active


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(80), default="")
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(120))
    region: Mapped[str] = mapped_column(String(10), default="")  # ISO 3166-2 subdivision code
    postcode: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    is_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    is_shipping: Mapped[bool] = mapped_column(Boolean, default=False)

    account: Mapped[Account] = relationship(back_populates="addresses")


class AttributeType(StrEnum):
    text = "text"
    number = "number"
    date = "date"
    boolean = "boolean"
    choice = "choice"


class CustomAttributeDefinition(Base):
    __tablename__ = "custom_attribute_definitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(10))
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class CustomAttributeValue(Base):
    __tablename__ = "custom_attribute_values"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("custom_attribute_definitions.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(Text)  # canonical text form: ISO date, "true"/"false", decimal string

    definition: Mapped[CustomAttributeDefinition] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("account_id", "definition_id"),)


class Invoice(Base):
    """An invoice issued to an account, recorded from the ERP or billing; it proves account ownership (seed 004)."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[date] = mapped_column(Date)
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (UniqueConstraint("account_id", "number"),)


class CardBrand(StrEnum):
    visa = "visa"
    mastercard = "mastercard"
    amex = "amex"
    discover = "discover"
    diners = "diners"
    jcb = "jcb"
    unionpay = "unionpay"
    maestro = "maestro"
    cartes_bancaires = "cartes_bancaires"
    other = "other"


class SavedPaymentMethod(Base):
    """A payment method the payment provider keeps for an account (or one of its contacts): only the provider's token
    and what lets people recognise the card. Never a card number or security code."""

    __tablename__ = "saved_payment_methods"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # by table name: contacts build on accounts
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(40))
    provider_token_id: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    expiry_month: Mapped[int] = mapped_column(Integer)
    expiry_year: Mapped[int] = mapped_column(Integer)
    holder_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "provider", "provider_token_id"),)

    def expired_on(self, today: date) -> bool:
        """A card is good until the last day of its expiry month."""
        return (self.expiry_year, self.expiry_month) < (today.year, today.month)

    @property
    def expired(self) -> bool:
        return self.expired_on(utcnow().date())
