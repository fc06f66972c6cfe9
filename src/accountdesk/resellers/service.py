"""The rules for a reseller's "My Customers": whose customers a staff user may reach, the grid and its statistics,
new customers and their details, subscriptions and the monthly run rate, and the customers' storefront users."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, AccountKind, AccountStatus, Address
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import audit, exports, validation
from accountdesk.core.audit import Actor
from accountdesk.core.errors import Conflict, NotFound, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.languages import DATE_FORMATS, LANGUAGES
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.orders import service as orders
from accountdesk.resellers.models import Subscription, SubscriptionStatus
from accountdesk.storefronts.models import Storefront

# --- scope: a reseller's staff reach only their own reseller; a foreign id answers like a missing one -----------


def get_reseller(session: Session, reseller_scope: int | None, reseller_id: int) -> Account:
    """The reseller account, or 404 when it does not exist or belongs to another reseller's staff."""
    if reseller_scope is not None and reseller_scope != reseller_id:
        raise NotFound("No such reseller.", code="reseller_not_found")
    reseller = session.scalar(select(Account).where(Account.id == reseller_id, Account.kind == AccountKind.reseller))
    if reseller is None:
        raise NotFound("No such reseller.", code="reseller_not_found")
    return reseller


def get_customer(session: Session, reseller: Account, customer_id: int, *, lock: bool = False) -> Account:
    """One of the reseller's customers; any other account answers 404 as if it did not exist."""
    return accounts.get_account(session, reseller.id, customer_id, lock=lock)


def reseller_of(session: Session, customer: Account) -> Account | None:
    return session.get(Account, customer.parent_reseller_id) if customer.parent_reseller_id else None


def storefront_of(session: Session, reseller: Account) -> Storefront | None:
    """The reseller's own storefront, where its customers' contacts sign in."""
    return session.scalar(select(Storefront).where(Storefront.reseller_account_id == reseller.id)
                          .order_by(Storefront.id).limit(1))


def actor_for(actor: Actor, reseller: Account) -> Actor:
    """The staff actor, labelled with the reseller it acted for, so the history shows who did it on whose behalf."""
    return Actor(actor.type, actor.id, f"{actor.label} ({reseller.name})"[:320])


def _hundredths(value: Decimal) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


# --- the customers grid ----------------------------------------------------------------------------------------

CITY = (select(Address.city).where(Address.account_id == Account.id)
        .order_by(Address.is_billing.desc(), Address.id).limit(1).correlate(Account).scalar_subquery())
# Someone can sign in for this customer: an active contact with a password on an active account (Contact.can_sign_in).
STOREFRONT_ACCESS = and_(Account.status == AccountStatus.active,
                         exists().where(Contact.account_id == Account.id, Contact.status == ContactStatus.active,
                                        Contact.password_hash.is_not(None)))
GRID_COLUMNS = (Account.id, Account.number, Account.name, Account.phone, CITY.label("city"), Account.email,
                Account.monthly_run_rate, STOREFRONT_ACCESS.label("storefront_access"), Account.status)
GRID_SORTS: dict[str, tuple[Any, ...]] = {
    "name": (Account.name.asc(), Account.id.asc()),
    "-name": (Account.name.desc(), Account.id.desc()),
    "number": (Account.number.asc(),),
    "-number": (Account.number.desc(),),
    "city": (CITY.asc(), Account.id.asc()),
    "-city": (CITY.desc(), Account.id.desc()),
    "monthly_run_rate": (Account.monthly_run_rate.asc(), Account.id.asc()),
    "-monthly_run_rate": (Account.monthly_run_rate.desc(), Account.id.desc()),
}
EXPORT_COLUMNS = (exports.Column(_l("Number"), width=12), exports.Column(_l("Name"), width=36),
                  exports.Column(_l("Phone"), width=18), exports.Column(_l("City"), width=20),
                  exports.Column(_l("E-mail"), width=32), exports.Column(_l("Monthly run rate"), "money", width=16),
                  exports.Column(_l("Storefront access"), "bool", width=16))


@dataclass
class GridPage:
    rows: list[Any]
    total: int
    total_is_exact: bool


def grid_query(reseller: Account, q: str = "", sort: str = "name") -> Select[Any]:
    """The reseller's customers as grid rows; every word of `q` must occur in the name, number, e-mails, phone or
    city (the accounts search text)."""
    stmt = select(*GRID_COLUMNS).where(Account.parent_reseller_id == reseller.id)
    for term in accounts.like_terms(q):
        stmt = stmt.where(Account.search_text.like(term, escape="\\"))
    return stmt.order_by(*GRID_SORTS.get(sort, GRID_SORTS["name"]))


def grid(session: Session, reseller: Account, *, q: str = "", sort: str = "name", page: int = 1,
         per_page: int = 25) -> GridPage:
    """One page of the grid and the (capped) number of matches. Both first find ids with an index-only scan of
    the reseller's covering index (name order, search text included), so the search never visits the rows of
    the reseller's customers that do not match; only the page's rows are read in full."""
    ids = grid_query(reseller, q, sort).with_only_columns(Account.id)
    capped = session.scalar(select(func.count()).select_from(
        ids.order_by(None).limit(accounts.MATCH_CAP + 1).subquery())) or 0
    page_ids = ids.limit(per_page).offset((page - 1) * per_page)
    rows = session.execute(select(*GRID_COLUMNS).where(Account.id.in_(page_ids))
                           .order_by(*GRID_SORTS.get(sort, GRID_SORTS["name"]))).all()
    return GridPage(list(rows), min(capped, accounts.MATCH_CAP), capped <= accounts.MATCH_CAP)


def export_query(reseller: Account, q: str = "", sort: str = "name") -> Select[Any]:
    """The searched customers in the grid's order, with the export's columns."""
    return grid_query(reseller, q, sort).with_only_columns(
        Account.number, Account.name, Account.phone, CITY, Account.email, Account.monthly_run_rate,
        STOREFRONT_ACCESS, maintain_column_froms=True)


def export_rows(session: Session, reseller: Account, q: str = "", sort: str = "name", *,
                batch: int = exports.BATCH) -> Iterator[Sequence[Any]]:
    """Every searched customer as the export's columns, read in batches from the database."""
    return exports.stream_rows(session, export_query(reseller, q, sort), batch)


@dataclass
class Statistics:
    all_customers: int
    transacting_customers: int
    monthly_run_rate: Decimal


def statistics(session: Session, reseller: Account) -> Statistics:
    """All customers (active and inactive), those transacting (an active subscription or asset, or a run rate
    above 0), and the total monthly run rate."""
    active = exists().where(Subscription.account_id == Account.id, Subscription.status == SubscriptionStatus.active)
    transacting = case((or_(Account.monthly_run_rate > 0, active), 1), else_=0)
    row = session.execute(select(func.count(), func.coalesce(func.sum(transacting), 0),
                                 func.coalesce(func.sum(Account.monthly_run_rate), 0))
                          .where(Account.parent_reseller_id == reseller.id)).one()
    return Statistics(int(row[0]), int(row[1]), _hundredths(Decimal(row[2])))


# --- new customers and their details ---------------------------------------------------------------------------

DETAIL_FIELDS = ("name", "email", "line1", "city", "country", "region", "postcode", "phone")
REQUIRED_MESSAGES = {"name": _l("Enter the company name."), "email": _l("Enter the e-mail address."),
                     "line1": _l("Enter the street address."), "city": _l("Enter the city."),
                     "country": _l("Choose the country."), "postcode": _l("Enter the postcode."),
                     "phone": _l("Enter the phone number.")}


def clean_details(raw: dict[str, Any]) -> dict[str, str]:
    """A customer's details checked all at once, every problem under its field with a readable message: mandatory
    fields, ISO 3166 country and subdivision, the country's postcode format, a phone number in E.164 form."""
    data = {name: " ".join(str(raw.get(name) or "").split()) for name in DETAIL_FIELDS}
    errors: dict[str, Any] = {}
    validation.require(errors, data, REQUIRED_MESSAGES)
    if data["country"]:
        data |= validation.check_address(data, errors)
    data |= validation.check_person({name: data[name] for name in ("email", "phone") if data[name]}, errors,
                                    country=data["country"] or None)
    if errors:
        raise ValidationFailed("Some fields need attention.", fields=errors)
    return data


def _address(details: dict[str, str]) -> dict[str, Any]:
    return {"line1": details["line1"], "city": details["city"], "region": details["region"],
            "postcode": details["postcode"], "country": details["country"]}


def create_customer(session: Session, actor: Actor, reseller: Account, raw: dict[str, Any]) -> Account:
    """A new B2B customer of the reseller, on the reseller's storefront, with that storefront's defaults."""
    details = clean_details(raw)
    storefront = storefront_of(session, reseller)
    data = {"storefront_id": storefront.id if storefront else None, "name": details["name"],
            "email": details["email"], "phone": details["phone"], "kind": AccountKind.b2b,
            "status": AccountStatus.active}
    prefix = storefront.account_number_prefix if storefront else accounts.DEFAULT_PREFIX
    return accounts.create_account(session, actor_for(actor, reseller), reseller.id, data,
                                   billing_address=_address(details), number_prefix=prefix)


def details_of(customer: Account) -> dict[str, str]:
    billing = customer.billing_address
    return {"name": customer.name, "email": customer.email, "phone": customer.phone,
            "line1": billing.line1 if billing else "", "city": billing.city if billing else "",
            "region": billing.region if billing else "", "postcode": billing.postcode if billing else "",
            "country": billing.country if billing else ""}


def update_customer(session: Session, actor: Actor, reseller: Account, customer: Account,
                    raw: dict[str, Any]) -> None:
    """Change some details (checked together with the ones kept, so the record stays complete) and/or the
    customer's own markup."""
    acting = actor_for(actor, reseller)
    account_fields: dict[str, Any] = {}
    if "markup_override_percent" in raw:
        override = raw["markup_override_percent"]
        account_fields["markup_override_percent"] = None if override is None else _hundredths(override)
    changed = {k: v for k, v in raw.items() if k in DETAIL_FIELDS and v is not None}
    details = clean_details({**details_of(customer), **changed}) if changed else None
    if details:
        account_fields |= {k: details[k] for k in ("name", "email", "phone")}
    accounts.update_account(session, acting, customer, account_fields, reseller.id)
    if details is None:
        return
    billing = customer.billing_address
    if billing is None:
        accounts.add_address(session, acting, customer, {**_address(details), "is_billing": True})
    else:
        accounts.update_address(session, acting, customer, billing.id, _address(details))


def storefront_access(session: Session, customer: Account) -> bool:
    return bool(session.scalar(select(STOREFRONT_ACCESS).where(Account.id == customer.id)))


def set_markup(session: Session, actor: Actor, reseller: Account, percent: Decimal) -> None:
    accounts.update_account(session, actor_for(actor, reseller), reseller, {"markup_percent": _hundredths(percent)})


# --- subscriptions and assets: the monthly run rate ------------------------------------------------------------

def subscriptions(session: Session, customer: Account) -> list[Subscription]:
    return list(session.scalars(select(Subscription).where(Subscription.account_id == customer.id)
                                .order_by(Subscription.starts_on.desc(), Subscription.id.desc())))


def get_subscription(session: Session, customer: Account, subscription_id: int) -> Subscription:
    row = session.scalar(select(Subscription).where(Subscription.id == subscription_id,
                                                    Subscription.account_id == customer.id))
    if row is None:
        raise NotFound("No such subscription for this customer.", code="subscription_not_found")
    return row


def _check_subscription(customer: Account, data: dict[str, Any]) -> None:
    if data.get("currency", customer.currency) != customer.currency:
        message = f"Record amounts in the customer's currency ({customer.currency})."
        raise ValidationFailed(message, fields={"currency": message})
    if data.get("ends_on") and data.get("starts_on") and data["ends_on"] < data["starts_on"]:
        raise ValidationFailed("The end date comes before the start.", fields={"ends_on": "End on or after the start."})


def refresh_run_rate(session: Session, customer: Account) -> None:
    """Recompute the customer's monthly run rate from its active subscriptions. The caller holds the customer's
    row lock (get_customer(lock=True)), so two concurrent changes cannot both write a stale sum."""
    session.flush()
    total = session.scalar(select(func.coalesce(func.sum(Subscription.monthly_amount), 0))
                           .where(Subscription.account_id == customer.id,
                                  Subscription.status == SubscriptionStatus.active))
    customer.monthly_run_rate = _hundredths(Decimal(total))


def record_subscription(session: Session, actor: Actor, reseller: Account, customer: Account,
                        data: dict[str, Any]) -> Subscription:
    data = {"currency": customer.currency, **data}
    _check_subscription(customer, data)
    row = Subscription(account_id=customer.id, **data)
    session.add(row)
    refresh_run_rate(session, customer)
    audit.record(session, actor_for(actor, reseller), f"{row.kind}.recorded", subject_type="subscription",
                 subject_id=row.id, account_id=customer.id, changes=audit.created(data))
    return row


def update_subscription(session: Session, actor: Actor, reseller: Account, customer: Account,
                        subscription: Subscription, data: dict[str, Any]) -> None:
    _check_subscription(customer, {"starts_on": subscription.starts_on, "ends_on": subscription.ends_on, **data})
    changes = audit.apply_changes(subscription, data)
    if changes:
        refresh_run_rate(session, customer)
        audit.record(session, actor_for(actor, reseller), f"{subscription.kind}.updated",
                     subject_type="subscription", subject_id=subscription.id, account_id=customer.id, changes=changes)


# --- storefront users of a customer ----------------------------------------------------------------------------

USER_FIELDS = {"first_name": "Enter the first name.", "last_name": "Enter the last name.",
               "email": "Enter the e-mail address.", "date_format": "Choose the date format."}
# left out, a new user's language is the customer's (contacts.default_language)


def users(session: Session, customer: Account, q: str = "") -> list[Contact]:
    """The customer's storefront users; every word of `q` must match the name, e-mail, language (code or name),
    date format or status."""
    stmt = select(Contact).where(Contact.account_id == customer.id)
    for word, term in zip(q.lower().split(), accounts.like_terms(q), strict=False):
        languages = [code for code, name in LANGUAGES.items() if word in code or word in name.lower()]
        stmt = stmt.where(or_(*(func.lower(column).like(term, escape="\\") for column in
                                (Contact.first_name, Contact.last_name, Contact.email, Contact.date_format,
                                 Contact.status)), Contact.language.in_(languages)))
    return list(session.scalars(stmt.order_by(Contact.last_name, Contact.first_name, Contact.id)))


def clean_user(raw: dict[str, Any]) -> dict[str, str]:
    data = {name: str(raw.get(name) or "").strip() for name in (*USER_FIELDS, "language")}
    errors = {name: message for name, message in USER_FIELDS.items() if not data[name]}
    data |= validation.check_person({"email": data["email"]} if data["email"] else {}, errors)
    if data["language"] and data["language"] not in LANGUAGES:
        errors["language"] = f"Choose one of: {', '.join(LANGUAGES.values())}."
    if data["date_format"] and data["date_format"] not in DATE_FORMATS:
        errors["date_format"] = f"Choose one of: {', '.join(DATE_FORMATS)}."
    if errors:
        raise ValidationFailed("Some fields need attention.", fields=errors)
    return data


def add_user(session: Session, actor: Actor, reseller: Account, customer: Account, raw: dict[str, Any],
             settings: Settings) -> Contact:
    """A new storefront user, invited on the reseller's storefront, with a welcome e-mail to activate the login."""
    data = clean_user(raw)
    storefront = storefront_of(session, reseller)
    if storefront is None:
        raise Conflict("Your distributor has not set up your storefront yet, so no one can sign in to it.",
                       code="reseller_storefront_missing")
    acting = actor_for(actor, reseller)
    contact = contacts.create_contact(session, acting, customer, {**data, "storefront_id": storefront.id},
                                      status=ContactStatus.invited)
    contacts.send_activation(session, acting, contact, settings, invited_by=reseller.name)
    return contact


def resend_activation(session: Session, actor: Actor, reseller: Account, contact: Contact,
                      settings: Settings) -> None:
    if contact.status != ContactStatus.invited:
        raise Conflict("This user has already activated the login; send a password reset instead.",
                       code="already_activated")
    contacts.send_activation(session, actor_for(actor, reseller), contact, settings, invited_by=reseller.name)


def reset_password(session: Session, actor: Actor, reseller: Account, contact: Contact, settings: Settings) -> None:
    if contact.status == ContactStatus.invited:
        raise Conflict("This user has not activated the login yet; resend the activation link instead.",
                       code="not_activated")
    if contact.status != ContactStatus.active and contact.status != ContactStatus.expired:
        raise Conflict("Activate this user first.", code="user_not_active")
    contacts.send_password_reset(session, actor_for(actor, reseller), contact, settings)


def set_user_active(session: Session, actor: Actor, reseller: Account, contact: Contact, active: bool) -> None:
    """Activate or deactivate a storefront user; deactivation ends every session at once and tells the user."""
    was_deactivated = contact.status == ContactStatus.deactivated
    contacts.set_active(session, actor_for(actor, reseller), contact, active)
    if not active and not was_deactivated:
        mail.send(session, "storefront_user_deactivated", contact.email, language=contact.language,
                  context=contacts.mail_context(session, contact))



def run_user_action(session: Session, actor: Actor, reseller: Account, contact: Contact, action: str,
                    settings: Settings) -> None:
    """One action of a storefront user's menu, by its name in the API and on the page."""
    match action:
        case "resend-activation":
            resend_activation(session, actor, reseller, contact, settings)
        case "reset-password":
            reset_password(session, actor, reseller, contact, settings)
        case "deactivate" | "activate":
            set_user_active(session, actor, reseller, contact, action == "activate")
        case _:
            raise NotFound("No such action.", code="action_not_found")

# --- how the API shows a reseller and a customer ---------------------------------------------------------------

def describe_reseller(session: Session, reseller: Account) -> dict[str, Any]:
    storefront = storefront_of(session, reseller)
    return {"id": reseller.id, "number": reseller.number, "name": reseller.name,
            "payment_method": reseller.payment_method, "markup_percent": reseller.markup_percent,
            "storefront_slug": storefront.slug if storefront else None,
            "order_approval_forced": orders.approval_forced(reseller), "currency": reseller.currency}


def order_approval(reseller: Account, customer: Account) -> dict[str, Any]:
    forced = orders.approval_forced(reseller)
    return {"required": customer.order_approval_required, "forced": forced,
            "effective": orders.approval_required(customer, reseller),
            "message": orders.FORCED_MESSAGE if forced else ""}


def describe_customer(session: Session, reseller: Account, customer: Account) -> dict[str, Any]:
    details = details_of(customer)
    return {"id": customer.id, "number": customer.number, "name": customer.name, "email": customer.email,
            "phone": customer.phone, "status": customer.status, "currency": customer.currency,
            "address": {k: details[k] for k in ("line1", "city", "region", "postcode", "country")},
            "storefront_access": storefront_access(session, customer),
            "monthly_run_rate": _hundredths(customer.monthly_run_rate),
            "markup_override_percent": customer.markup_override_percent,
            "markup_percent": orders.markup_for(customer, reseller),
            "order_approval": order_approval(reseller, customer),
            "created_at": customer.created_at}


def describe_user(contact: Contact) -> dict[str, Any]:
    from accountdesk.resellers.schemas import UserOut

    return UserOut.model_validate(contact).model_dump(mode="json")
