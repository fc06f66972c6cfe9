"""The registration policy of a storefront, as staff read and change it (API; the console page reuses it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import bindparam, column, select, table
from sqlalchemy.orm import Session

from accountdesk.core import audit, validation
from accountdesk.core.audit import Actor
from accountdesk.core.errors import NotFound, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.languages import LANGUAGES, Language
from accountdesk.core.validation import Id
from accountdesk.storefronts.models import Storefront


def _addresses(value: str) -> str:
    addresses = [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    return ", ".join(validation.normalise_email(a) for a in addresses)


class PolicyFields(BaseModel):
    """Every setting of a storefront's registration policy; all optional so PATCH can reuse it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    default_language: Language | None = None
    languages: list[Language] | None = Field(None, description=(
        "The languages the storefront's pages offer: the visitor's Accept-Language and the language switcher choose "
        "among them (a contact still reads pages and e-mails in their own language). Must include "
        "`default_language` (422 `default_language_not_offered`); a new storefront offers every language."))
    anonymous_access: bool | None = None
    self_registration: bool | None = None
    registration_mode: Literal["open", "approval", "erp_verified"] | None = None
    sign_in_after_registration: bool | None = None
    sign_in_text: str | None = Field(None, max_length=2000, description="Shown above the sign-in form, in the default "
                                                                    "language")
    sign_in_text_translations: dict[Language, str] | None = Field(None, description=(
        "The sign-in text in other languages, by language code; a page in a language without one shows "
        "`sign_in_text`. An empty text is dropped."))
    verification_required_before_ordering: bool | None = None
    new_contact_for_existing_account: bool | None = None
    new_contact_requires_approval: bool | None = None
    invoice_window_days: int | None = Field(None, ge=1, le=3650)
    allow_reseller_registration: bool | None = None
    default_payment_method: Literal["cash", "deposit", "credit_card", "invoice"] | None = None
    default_payment_terms: str | None = Field(None, max_length=40)
    default_prorate_billing: bool | None = None
    default_billing_day: int | None = Field(None, ge=1, le=28)
    default_partial_charges_invoicing: Literal["next_invoice", "immediately"] | None = None
    default_auto_invoice_email: bool | None = None
    default_currency: str | None = Field(None, min_length=3, max_length=3)
    default_customer_group: str | None = Field(None, max_length=40)
    default_price_group: str | None = Field(None, max_length=40)
    default_rep_code: str | None = Field(None, max_length=40)
    account_number_prefix: str | None = Field(None, pattern=r"^[A-Z]{1,6}$")
    password_min_length: int | None = Field(None, ge=8, le=128)
    password_max_length: int | None = Field(None, ge=16, le=1024)
    password_require_character_classes: bool | None = None
    password_reject_common: bool | None = None
    allow_manual_password: bool | None = None
    staff_notification_to: str | None = Field(None, max_length=2000)
    staff_notification_cc: str | None = Field(None, max_length=2000)
    staff_notification_bcc: str | None = Field(None, max_length=2000)
    erp_cash_account_code: str | None = Field(None, max_length=40)
    erp_excluded_account_codes: str | None = Field(None, max_length=4000)
    erp_unreachable_policy: Literal["deny", "allow"] | None = None
    erp_stale_hours: int | None = Field(None, ge=1, le=24 * 90)
    erp_sync: Literal["on_first_order", "on_approval", "manual"] | None = None
    inactivity_days: int | None = Field(None, ge=0, le=3650)  # 0: no re-verification after inactivity

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return validation.currency_code(value) if value else value

    @field_validator("staff_notification_to", "staff_notification_cc", "staff_notification_bcc")
    @classmethod
    def _emails(cls, value: str | None) -> str | None:
        return _addresses(value) if value is not None else None

    @field_validator("erp_excluded_account_codes")
    @classmethod
    def _codes(cls, value: str | None) -> str | None:
        return ", ".join(c.strip().upper() for c in value.split(",") if c.strip()) if value is not None else None

    @field_validator("sign_in_text_translations")
    @classmethod
    def _texts(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        texts = {code: text.strip() for code, text in value.items() if text and text.strip()}
        if any(len(text) > 2000 for text in texts.values()):
            raise ValueError(_l("A sign-in text may have at most 2,000 characters."))
        return {code: texts[code] for code in LANGUAGES if code in texts}

    @field_validator("languages")
    @classmethod
    def _in_product_order(cls, value: list[str] | None) -> list[str] | None:
        return [code for code in LANGUAGES if code in value] if value is not None else None

    @model_validator(mode="after")
    def _lengths(self) -> PolicyFields:
        shortest, longest = self.password_min_length, self.password_max_length
        if shortest and longest and shortest > longest:
            raise ValueError(_l("The minimum password length must not exceed the maximum."))
        return self


class StorefrontCreate(PolicyFields):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    reseller_account_id: Id | None = None


class StorefrontOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    reseller_account_id: int | None


POLICY_FIELDS = tuple(PolicyFields.model_fields)


def describe(storefront: Storefront) -> dict[str, Any]:
    return StorefrontOut.model_validate(storefront).model_dump() | {f: getattr(storefront, f) for f in POLICY_FIELDS}


def list_storefronts(session: Session) -> list[Storefront]:
    return list(session.scalars(select(Storefront).order_by(Storefront.name, Storefront.id)))


# Built once, like the other statements of every sign-in and registration: a statement object reused keeps its cache
# key, where one built per call costs more than SQLAlchemy's own work of running it.
BY_SLUG = select(Storefront).where(Storefront.slug == bindparam("slug"))


def by_slug(session: Session, slug: str) -> Storefront:
    storefront = session.scalar(BY_SLUG, {"slug": slug})
    if storefront is None:
        raise NotFound("No such storefront.", code="storefront_not_found")
    return storefront


NEEDS_ANONYMOUS_ACCESS = _l("Self-registration is for anonymous visitors: turn anonymous access on, or turn "
                          "self-registration off.")


def _check_access(before: Storefront | None, data: dict[str, Any]) -> None:
    """Self-registration needs anonymous access (seed 000); the message goes to the setting that changes."""
    def merged(name: str) -> bool:
        default = Storefront.__table__.c[name].default.arg
        return data.get(name, getattr(before, name) if before is not None else default)

    if merged("self_registration") and not merged("anonymous_access"):
        was_allowed = before is not None and before.takes_registrations  # so anonymous access is being turned off
        raise field_error("anonymous_access" if was_allowed else "self_registration", NEEDS_ANONYMOUS_ACCESS)


DEFAULT_NOT_OFFERED = _l("The default language must be one of the languages offered.")


def _check_languages(before: Storefront | None, data: dict[str, Any]) -> None:
    """The default language is always offered; the message goes to the setting that changes (the languages offered
    when both do)."""
    default = data.get("default_language", before.default_language if before is not None else
                       Storefront.__table__.c.default_language.default.arg)
    offered = data.get("languages", before.offered_languages if before is not None else list(LANGUAGES))
    if default not in offered:
        raise field_error("default_language" if "languages" not in data else "languages", DEFAULT_NOT_OFFERED,
                          code="default_language_not_offered")


# A reseller's storefront belongs to a reseller account. Accounts build on storefronts (a new account takes its
# storefront's defaults), so the account's kind is read from the accounts table by name rather than its model.
ACCOUNT_KINDS = table("accounts", column("id"), column("kind"))
NOT_A_RESELLER = _l("No such reseller account.")


def _check_reseller(session: Session, data: dict[str, Any]) -> None:
    reseller_id = data.get("reseller_account_id")
    if reseller_id is not None and session.scalar(select(ACCOUNT_KINDS.c.kind).where(
            ACCOUNT_KINDS.c.id == reseller_id)) != "reseller":
        raise field_error("reseller_account_id", NOT_A_RESELLER)


def create(session: Session, actor: Actor, data: dict[str, Any]) -> Storefront:
    _check_access(None, data)
    _check_languages(None, data)
    _check_reseller(session, data)
    storefront = Storefront(**data)
    session.add(storefront)
    session.flush()
    audit.record(session, actor, "storefront.created", subject_type="storefront", subject_id=storefront.id,
                 account_id=storefront.reseller_account_id, changes=audit.created(data))
    return storefront


def update(session: Session, actor: Actor, storefront: Storefront, data: dict[str, Any]) -> dict[str, list[Any]]:
    merged_min = data.get("password_min_length", storefront.password_min_length)
    merged_max = data.get("password_max_length", storefront.password_max_length)
    if merged_min > merged_max:
        raise field_error("password_min_length", "The minimum password length must not exceed the maximum.")
    _check_access(storefront, data)
    _check_languages(storefront, data)
    changes = audit.apply_changes(storefront, data)
    if changes:
        audit.record(session, actor, "storefront.policy_changed", subject_type="storefront",
                     subject_id=storefront.id, account_id=storefront.reseller_account_id, changes=changes)
    return changes
