"""Company e-mail domain pages: the console's section of the account record page, the account admin's storefront
page (domains, DNS check, join requests), and the offer on the verified-e-mail page with its acceptance.
Rules: domains.service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Form as FormField
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account
from accountdesk.accounts.pages import RECORD_SECTIONS
from accountdesk.contacts.models import Contact
from accountdesk.core.confirmations import Confirmation, confirmation_page
from accountdesk.core.errors import AppError, ValidationFailed
from accountdesk.core.i18n import _l, filled
from accountdesk.core.pages import PageRoute, flash_redirect
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.domains import service
from accountdesk.registration.pages import VERIFIED_OFFERS
from accountdesk.signin.account_pages import storefront_page
from accountdesk.signin.pages import StorefrontPageRoute
from accountdesk.signin.session import CurrentStorefront, PageContact, StorefrontSignIn
from accountdesk.staff.deps import console_page
from accountdesk.staff.models import StaffRole
from accountdesk.staff.service import MANAGE_CUSTOMERS, StaffPrincipal

console_pages = APIRouter(prefix="/console/accounts/{account_id}", route_class=PageRoute)
storefront_pages = APIRouter(prefix="/s/{slug}", route_class=StorefrontPageRoute)
Manager = Annotated[StaffPrincipal, Depends(console_page(MANAGE_CUSTOMERS))]
Verifier = Annotated[StaffPrincipal, Depends(console_page(frozenset({StaffRole.admin, StaffRole.csr})))]
Text = Annotated[str, FormField(max_length=300)]


def _record_section(session: Session, account: Account) -> dict[str, Any]:
    """The account record page's "E-mail domains" section (company accounts)."""
    return {"account_domains": service.domains_of(session, account), "txt_record": service.txt_record}


RECORD_SECTIONS.append(_record_section)


def _offer(session: Session, contact: Contact) -> dict[str, Any] | None:
    found = service.offer(session, contact)
    return {**found, "template": "domains/_join_offer.html"} if found else None


VERIFIED_OFFERS.append(_offer)


# --- console -------------------------------------------------------------------------------------------------------

def _back(request: Request, account: Account, message: Any) -> Response:
    return flash_redirect(request, f"/console/accounts/{account.id}#domains", message)


def _answered(request: Request, session: Session, account: Account, action: Any, done: Any) -> Response:
    """Run a domain action; a refusal (a bad domain, one taken) goes back to the section as its message."""
    try:
        with session.begin_nested():
            action()
    except AppError as exc:
        return _back(request, account, exc.fields.get("domain", exc.message))
    return _back(request, account, done)


@console_pages.post("/domains")
def claim(account_id: Id, request: Request, session: DbSession, staff: Manager, domain: Text = "") -> Response:
    """Claim an e-mail domain for the account; it shows the TXT record to publish."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return _answered(request, session, account, lambda: service.claim(session, staff.actor, account, domain),
                     _l("Domain claimed: publish its TXT record, then check it, or verify it yourself."))


@console_pages.post("/domains/{domain_id}/dns-check")
def check(account_id: Id, domain_id: Id, request: Request, session: DbSession, staff: Manager) -> Response:
    """Look up the domain's TXT record now."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    row = service.get_domain(session, account, domain_id)
    domain, expected = row.domain, service.txt_record(row)
    session.commit()  # nothing held while the DNS answers
    result = service.record_found(request.app.state.settings, domain, expected)
    if not result.verified:
        return _back(request, account, result.problem)
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return _answered(request, session, account, lambda: service.mark_verified(
        session, staff.actor, account, service.get_domain(session, account, domain_id), "dns"),
        _l("%(domain)s is verified.", domain=domain))


@console_pages.post("/domains/{domain_id}/verify")
def verify(account_id: Id, domain_id: Id, request: Request, session: DbSession, staff: Verifier) -> Response:
    """Verify the domain without the DNS record."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    row = service.get_domain(session, account, domain_id)
    return _answered(request, session, account, lambda: service.mark_verified(session, staff.actor, account, row,
                                                                              "staff"),
                     _l("%(domain)s is verified.", domain=row.domain))


@console_pages.post("/domains/{domain_id}/remove")
def remove(account_id: Id, domain_id: Id, request: Request, session: DbSession, staff: Manager,
           confirmed: Text = "") -> Response:
    """Remove the domain from the account, once confirmed (claimed again, it needs a new verification)."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    row = service.get_domain(session, account, domain_id)
    if confirmed != "yes":
        here = f"/console/accounts/{account.id}"
        return confirmation_page(request, Confirmation(
            filled(_l("Remove %(domain)s?"), domain=row.domain),
            filled(_l("Registrants on %(domain)s no longer join %(name)s; claimed again, the domain has to be verified "
                      "again."), domain=row.domain, name=account.name),
            _l("Yes, remove"), f"{here}/domains/{row.id}/remove", f"{here}#domains", danger=True),
            {"staff": staff})
    service.remove(session, staff.actor, account, row)
    return _back(request, account, _l("%(domain)s removed.", domain=row.domain))


@console_pages.post("/domain-join")
def join_mode(account_id: Id, request: Request, session: DbSession, staff: Manager, mode: Text = "") -> Response:
    """Whether registrants on the account's domains join at once or after the account admin's approval."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return _answered(request, session, account, lambda: service.set_join_mode(session, staff.actor, account,
                                                                              _mode(mode)), _l("Saved."))


def _mode(value: str) -> str:
    if value not in service.DomainJoin.__members__:
        raise ValidationFailed("Choose approval or direct.", code="invalid_mode")
    return value


# --- storefront: the account admin ----------------------------------------------------------------------------------

def _admin_page(request: Request, session: Session, signed_in: StorefrontSignIn,
                error: AppError | None = None) -> Response:
    account = service.require_account_admin(signed_in.contact)
    return storefront_page(request, "domains/account_domains.html", signed_in.storefront, {
        "signed_in": signed_in, "account": account, "domains": service.domains_of(session, account),
        "txt_record": service.txt_record, "requests": service.join_requests(session, account)}, error=error)


def _here(signed_in: StorefrontSignIn) -> str:
    return f"/s/{signed_in.storefront.slug}/account/domains"


def _admin_action(request: Request, session: Session, signed_in: StorefrontSignIn, action: Any,
                  done: Any) -> Response:
    service.require_account_admin(signed_in.contact)
    try:
        with session.begin_nested():
            action()
    except AppError as exc:
        return _admin_page(request, session, signed_in, exc)
    return flash_redirect(request, _here(signed_in), done)


@storefront_pages.get("/account/domains")
def admin_page(request: Request, session: DbSession, signed_in: PageContact) -> Response:
    """The company's e-mail domains and the requests of people who want to join it."""
    return _admin_page(request, session, signed_in)


@storefront_pages.post("/account/domains")
def admin_claim(request: Request, session: DbSession, signed_in: PageContact, domain: Text = "") -> Response:
    """Claim a domain; publish the TXT record shown, then check it."""
    return _admin_action(request, session, signed_in, lambda: service.claim(
        session, signed_in.actor, signed_in.contact.account, domain), _l("Domain added: publish its TXT record."))


@storefront_pages.post("/account/domains/{domain_id}/dns-check")
def admin_check(domain_id: Id, request: Request, session: DbSession, signed_in: PageContact) -> Response:
    """Look up the domain's TXT record now."""
    account = service.require_account_admin(signed_in.contact)
    row = service.get_domain(session, account, domain_id)
    domain, expected = row.domain, service.txt_record(row)
    session.commit()  # nothing held while the DNS answers
    result = service.record_found(request.app.state.settings, domain, expected)
    if not result.verified:
        return _admin_page(request, session, signed_in, ValidationFailed(result.problem, code="txt_record_missing"))
    return _admin_action(request, session, signed_in, lambda: service.mark_verified(
        session, signed_in.actor, account, row, "dns"), _l("%(domain)s is verified.", domain=domain))


@storefront_pages.post("/account/domains/{domain_id}/remove")
def admin_remove(domain_id: Id, request: Request, session: DbSession, signed_in: PageContact) -> Response:
    account = service.require_account_admin(signed_in.contact)
    row = service.get_domain(session, account, domain_id)
    return _admin_action(request, session, signed_in, lambda: service.remove(session, signed_in.actor, account, row),
                         _l("%(domain)s removed.", domain=row.domain))


@storefront_pages.post("/account/domain-join")
def admin_join_mode(request: Request, session: DbSession, signed_in: PageContact, mode: Text = "") -> Response:
    return _admin_action(request, session, signed_in, lambda: service.set_join_mode(
        session, signed_in.actor, signed_in.contact.account, _mode(mode)), _l("Saved."))


@storefront_pages.post("/account/join-requests/{contact_id}/{decision}")
def admin_decide(contact_id: Id, decision: str, request: Request, session: DbSession,
                 signed_in: PageContact) -> Response:
    """Approve or reject a person who asks to join the company (they are told by e-mail)."""
    if decision not in ("approve", "reject"):
        raise ValidationFailed("Use the Approve or Reject button.", code="invalid_decision")
    accept = decision == "approve"
    return _admin_action(request, session, signed_in, lambda: service.decide(
        session, signed_in.contact, contact_id, accept, request.app.state.settings.base_url),
        _l("Approved: they were told by e-mail.") if accept else _l("Rejected: they were told by e-mail."))


# --- storefront: accepting the offer --------------------------------------------------------------------------------

@storefront_pages.post("/join")
def join(request: Request, session: DbSession, storefront: CurrentStorefront, offer_token: Text = "") -> Response:
    """Join the company's account instead of the one just registered (from the verified-e-mail page)."""
    try:
        with session.begin_nested():
            contact, pending = service.join(session, storefront, offer_token, request.app.state.settings.base_url)
    except ValidationFailed as exc:
        return storefront_page(request, "domains/join_done.html", storefront, {"contact": None}, error=exc)
    return storefront_page(request, "domains/join_done.html", storefront, {"contact": contact, "pending": pending})


router = APIRouter(include_in_schema=False)
router.include_router(console_pages)
router.include_router(storefront_pages)
