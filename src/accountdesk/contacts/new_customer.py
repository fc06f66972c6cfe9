"""The rules of the console's "Create customer" (seed 001): one dialog for a person — first and last name, e-mail,
phone, Active, preferred language — who becomes a new customer (an account of their own, or of their company when
a company name is given, with an optional billing address) or a new contact of an account that exists. The account
and the login are made by accounts.create_account and create_contact, in the request's one transaction, each with
its history. A customer with the same name or e-mail as one that exists is created only once staff confirm it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.duplicates import SimilarAccount, similar_accounts
from accountdesk.accounts.models import Account, AccountKind, AccountStatus
from accountdesk.contacts.models import Contact, ContactRole, ContactStatus
from accountdesk.contacts.service import create_contact, usable_storefront
from accountdesk.core.audit import Actor
from accountdesk.core.errors import NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.storefronts.models import Storefront

CONFIRM_FIELD = "create_anyway"
RESELLER_NEEDS_NAME = _l("A reseller is a company: enter its name.")


@dataclass
class NewCustomer:
    """What the dialog asks, checked: `person` has ContactCreate's fields (e-mail and phone normalised, `active`
    and `language` among them). With `account_id` the person joins that account; otherwise a new account is made
    from the rest."""

    person: dict[str, Any]
    company_name: str = ""
    billing_address: dict[str, Any] | None = None
    storefront_id: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    account_id: int | None = None
    create_anyway: bool = False
    reseller: bool = False  # the company sells on to customers of its own (merchant staff only)

    @property
    def person_name(self) -> str:
        return f"{self.person.get('first_name', '')} {self.person.get('last_name', '')}".strip()

    @property
    def account_name(self) -> str:
        """A company's account carries the company's name; a private customer's (B2C), the person's."""
        return self.company_name.strip() or self.person_name

    @property
    def joins_an_account(self) -> bool:
        return self.account_id is not None


def usable_storefronts(session: Session, reseller_scope: int | None) -> list[Storefront]:
    """The storefronts a staff user may open customers on (accounts.usable_storefronts), by name."""
    return list(session.scalars(select(Storefront).where(Storefront.id.in_(accounts.usable_storefronts(
        reseller_scope))).order_by(Storefront.name, Storefront.id)))


def look_alikes(session: Session, reseller_scope: int | None, customer: NewCustomer) -> list[SimilarAccount]:
    """Existing customers like this one (accounts.duplicates): the same name (the new account's or the person's)
    or e-mail first, then names like the new account's (like the person's, when they join an existing account)."""
    email = str(customer.person.get("email") or "")
    if customer.joins_an_account:
        return similar_accounts(session, reseller_scope, customer.person_name, email)
    return similar_accounts(session, reseller_scope, customer.account_name, email, also_named=[customer.person_name])


def create_customer(session: Session, actor: Actor, reseller_scope: int | None, customer: NewCustomer) -> Contact:
    """The person's login, on a new account or on the chosen one (within the staff user's scope: any other answers
    like one that does not exist). Refused while a customer with the same name or e-mail exists, unless
    `create_anyway`: nothing is made then."""
    if not customer.create_anyway and any(s.exact for s in look_alikes(session, reseller_scope, customer)):
        message = _l("A customer with this name or e-mail already exists: open it from the list above, or tick "
                     "“Create anyway” and save again.")
        raise ValidationFailed(message, code="possible_duplicate", fields={CONFIRM_FIELD: message})
    status = ContactStatus.invited if customer.person.get("active", True) else ContactStatus.deactivated
    if customer.account_id is not None:  # joins_an_account
        account = _chosen_account(session, reseller_scope, customer.account_id)
        person = {**customer.person, "role": ContactRole.buyer}
    else:
        account = _new_account(session, actor, reseller_scope, customer)
        person = {**customer.person, "role": ContactRole.account_admin, "storefront_id": account.storefront_id}
    return create_contact(session, actor, account, person, status=status, reseller_scope=reseller_scope)


def _chosen_account(session: Session, reseller_scope: int | None, account_id: int) -> Account:
    try:
        return accounts.get_account(session, reseller_scope, account_id, lock=True)
    except NotFound as exc:
        raise field_error("account_id", "No such account.") from exc


def _new_account(session: Session, actor: Actor, reseller_scope: int | None, customer: NewCustomer) -> Account:
    """The customer's account on the chosen storefront (its defaults and numbering): a company's (B2B, or a
    reseller's) when a company name is given, else a private customer's (B2C), with the person's e-mail, phone and
    language. Only merchant staff open a reseller's account (accounts.create_account refuses reseller staff)."""
    if customer.reseller and not customer.company_name:
        raise field_error("company_name", RESELLER_NEEDS_NAME)
    storefront = usable_storefront(session, customer.storefront_id, reseller_scope)
    person = customer.person
    kind = AccountKind.reseller if customer.reseller else AccountKind.b2b if customer.company_name else AccountKind.b2c
    data = {"name": customer.account_name, "kind": kind,
            "status": AccountStatus.active if person.get("active", True) else AccountStatus.inactive,
            "email": person["email"], "phone": person["phone"], "preferred_language": person["language"],
            "storefront_id": storefront.id, "attributes": customer.attributes}
    return accounts.create_account(session, actor, reseller_scope, data, billing_address=customer.billing_address,
                                   number_prefix=storefront.account_number_prefix)
