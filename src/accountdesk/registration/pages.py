"""Registration pages: the storefront's "Create an account" (the registration form, or instant registration on an
ERP-verified storefront), "Create a new contact for your account" and e-mail verification pages, and the console's
approval queue. The rules live in registration.service and registration.instant, as for the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from accountdesk.contacts.models import Contact
from accountdesk.core import validation
from accountdesk.core.confirmations import Confirmation, confirmation_page, confirmed
from accountdesk.core.errors import AppError, Conflict, TooManyRequests, ValidationFailed, field_error
from accountdesk.core.i18n import _l, filled, later, page_language
from accountdesk.core.pages import Form, LinkToken, PageRoute, field_errors, flash_redirect, form_fields, nest, page
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession, client_address
from accountdesk.erp.deps import erp_gateway
from accountdesk.registration import erp as erp_service
from accountdesk.registration import instant, service
from accountdesk.registration.schemas import (
    ClaimContactIn,
    ClaimIn,
    InstantLoginIn,
    InstantRequestIn,
    RegistrationIn,
    RejectIn,
)
from accountdesk.signin.pages import StorefrontPageRoute
from accountdesk.signin.session import CurrentStorefront, OptionalContact, sign_in_contact
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import APPROVE, StaffPrincipal
from accountdesk.storefronts.models import Storefront

storefront_pages = APIRouter(prefix="/s/{slug}", route_class=StorefrontPageRoute)
console_pages = APIRouter(prefix="/console/approvals", route_class=PageRoute)
Fields = Annotated[dict[str, str], Depends(form_fields)]
Approver = Annotated[StaffPrincipal, Depends(console_page(APPROVE))]
REFUSED = (ValidationError, ValidationFailed, TooManyRequests)
PASSWORD_FIELDS = ("password", "password_confirm")


def _refusal(exc: ValidationError | AppError) -> tuple[dict[str, str], int, dict[str, str]]:
    """Field messages, status and headers (Retry-After) of refused input."""
    if isinstance(exc, AppError):
        return field_errors(exc), exc.status_code, exc.headers
    return field_errors(exc), 422, {}


PASSWORDS_DIFFER = _l("The two passwords differ.")


def _same_passwords(form: dict[str, str]) -> None:
    if form.get("password", "") != form.get("password_confirm", ""):
        raise field_error("password_confirm", PASSWORDS_DIFFER)


def _password_problems(form: dict[str, str]) -> dict[str, Any]:
    """The form's own check, told with the rest of its problems: the password repeated differently."""
    return {"password_confirm": PASSWORDS_DIFFER} if form.get("password", "") != form.get("password_confirm", "") \
        else {}


def _received(request: Request, storefront: Storefront, session: Session, outcome: service.Outcome) -> Response:
    """The same redirect and message for every accepted request; the session cookie only for a sign-in."""
    response = flash_redirect(request, f"/s/{storefront.slug}/register/received", outcome.answer["message"])
    if outcome.sign_in is not None:
        sign_in_contact(session, response, storefront, outcome.sign_in, request=request)
    return response


# --- create an account ---------------------------------------------------------------------------------------------

def _register_page(request: Request, storefront: Storefront, form: Form, status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    response = page(request, "registration/register.html", {"storefront": storefront, "form": form}, status)
    response.headers.update(headers or {})
    return response


@storefront_pages.get("/register")
def registration_form(slug: str, request: Request, session: DbSession) -> Response:
    """The "Create an account" form, or only the e-mail on an ERP-verified storefront (a readable 403 page when
    the storefront takes no registrations)."""
    storefront = service.open_storefront(session, slug)
    if service.workflow(storefront) is service.INSTANT:
        return _instant_page(request, storefront, Form(prefix="instant"))
    return _register_page(request, storefront, Form(prefix="reg"))


def _language(request: Request, storefront: Storefront) -> str:
    """A registrant's language: the one the storefront's pages speak to them (chosen with the switcher, or what
    their browser asks for among the storefront's languages)."""
    return page_language(request, {"storefront": storefront})[0]


def _in_page_language(request: Request, storefront: Storefront, form: dict[str, str]) -> dict[str, str]:
    return {**form, "language": form.get("language") or _language(request, storefront)}


@storefront_pages.post("/register")
def register(slug: str, request: Request, form: Fields, session: DbSession) -> Response:
    """Create the account (or, on an ERP-verified storefront, send the instant registration link); refused input
    shows the form again with a message beside each field."""
    storefront = service.open_storefront(session, slug)
    if service.workflow(storefront) is service.INSTANT:
        return _request_instant(request, session, storefront, form)
    differ = _password_problems(form)
    try:
        body = RegistrationIn.model_validate(nest(_in_page_language(request, storefront, form), "billing_address"))
        applicant, password = service.prepare_registration(session, request.app.state.rate_limits, storefront,
                                                           body, client_address(request), differ)
    except REFUSED as exc:
        errors, status, headers = _refusal(exc)
        return _register_page(request, storefront, Form.refused(form, differ | errors, "reg"), status, headers)
    timed = service.evenly_timed(session)
    outcome = timed(service.register(session, storefront.id, applicant, password,
                                     request.app.state.settings.base_url))
    return _received(request, storefront, session, outcome)


# --- instant registration (erp_verified) -----------------------------------------------------------------------------

def _instant_page(request: Request, storefront: Storefront, form: Form, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    response = page(request, "registration/instant.html", {"storefront": storefront, "form": form}, status)
    response.headers.update(headers or {})
    return response


def _request_instant(request: Request, session: Session, storefront: Storefront, form: dict[str, str]) -> Response:
    """Step 1: the e-mail; every accepted address gets the same redirect and message."""
    try:
        email = InstantRequestIn.model_validate(form).email
        storefront, matches = instant.look_up(session, request.app.state.rate_limits, erp_gateway(request),
                                              storefront.slug, email, client_address(request))
    except (*REFUSED, AppError) as exc:  # AppError: the ERP cannot be asked (503 with Retry-After)
        errors, status, headers = _refusal(exc)
        return _instant_page(request, storefront, Form.refused(form, errors, "instant"), status, headers)
    answer = instant.send_link(session, storefront, email, matches, request.app.state.settings.base_url,
                               _language(request, storefront))
    return flash_redirect(request, f"/s/{storefront.slug}/register/received", answer["message"])


def _chooser(request: Request, storefront: Storefront, found: instant.Offer | None,
             problem: AppError | None = None) -> Response:
    """The link's accounts to choose from; or why there are none: the link is spent (404), the ERP cannot be
    asked (503), the account chosen is not (or no longer) offered."""
    response = page(request, "registration/instant_accounts.html", {
        "storefront": storefront, "offer": found, "problem": later(problem.message) if problem else "",
        "retry": bool(problem) and problem.status_code == 503}, problem.status_code if problem else 200)
    response.headers.update(problem.headers if problem else {})
    return response


def _login_form(request: Request, storefront: Storefront, found: instant.Offer,
                match: erp_service.ErpMatch, form: Form, status: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    """The chosen account's login form; password messages go to the shared new-password partial."""
    names = Form.refused(form.values, {k: v for k, v in form.errors.items() if k not in PASSWORD_FIELDS}, "login") \
        if form.submitted else form
    response = page(request, "registration/instant_login.html", {
        "storefront": storefront, "offer": found, "match": match, "form": names, "fields": form.errors}, status)
    response.headers.update(headers or {})
    return response


def _instant_step(request: Request, session: Session, storefront: Storefront, token: str, account: str,
                  form: Form | None = None, status: int = 200, headers: dict[str, str] | None = None,
                  problem: AppError | None = None) -> Response:
    """Step 2: the chooser, or (with `account`) that account's login form, as the ERP and the link allow now."""
    try:
        found = instant.offer(session, erp_gateway(request), storefront, token)
    except AppError as exc:
        return _chooser(request, storefront, None, exc)
    try:
        match = found.chosen(account) if account else None
    except ValidationFailed as exc:
        return _chooser(request, storefront, found, problem or exc)
    if match is None:
        return _chooser(request, storefront, found, problem)
    return _login_form(request, storefront, found, match, form or Form(prefix="login"), status, headers)


@storefront_pages.get("/register/instant")
def instant_link(slug: str, request: Request, session: DbSession, token: LinkToken,
                 account: Annotated[str, Query(max_length=40)] = "") -> Response:
    """The link of the instant registration e-mail: the accounts to choose from, then the chosen one's form."""
    storefront = instant.instant_storefront(session, slug)
    return _instant_step(request, session, storefront, token, account)


@storefront_pages.post("/register/instant")
def create_instant_login(slug: str, request: Request, session: DbSession, form: Fields,
                         token: LinkToken) -> Response:
    """Step 3: create the login for the chosen account and sign in; refused input shows the form again."""
    storefront = instant.instant_storefront(session, slug)
    try:
        _same_passwords(form)
        body = InstantLoginIn.model_validate(form)
        new = instant.prepare_login(session, erp_gateway(request), storefront, token, body.account_code,
                                    body.password, body.first_name, body.last_name,
                                    _language(request, storefront))
        with session.begin_nested():  # a refusal shows the form again with nothing of this attempt kept
            contact = instant.create_login(session, storefront.id, token, new)
    except (ValidationError, AppError) as exc:
        errors, status, headers = _refusal(exc)
        return _instant_step(request, session, storefront, token, form.get("account_code", ""),
                             Form.refused(form, errors, "login"), status, headers,
                             exc if isinstance(exc, AppError) else None)
    response = flash_redirect(request, f"/s/{storefront.slug}",
                              f"Welcome, {contact.first_name}: your login for {contact.account.name} is ready.")
    sign_in_contact(session, response, storefront, contact, request=request)
    return response


@storefront_pages.get("/register/received")
def received(request: Request, storefront: CurrentStorefront, signed_in: OptionalContact) -> Response:
    """Thank-you page after a registration or a new contact request."""
    return page(request, "registration/received.html", {"storefront": storefront, "signed_in": signed_in})


# --- a new contact for an existing account -------------------------------------------------------------------------

def _claim_page(request: Request, storefront: Storefront, form: Form, status: int = 200,
                headers: dict[str, str] | None = None) -> Response:
    response = page(request, "registration/claim.html", {"storefront": storefront, "form": form}, status)
    response.headers.update(headers or {})
    return response


def _login_page(request: Request, storefront: Storefront, token: str, account: dict[str, str], form: Form,
                status: int = 200) -> Response:
    return page(request, "registration/claim_contact.html", {"storefront": storefront, "claim_token": token,
                                                              "account": account, "form": form}, status)


@storefront_pages.get("/register/contact")
def claim_form(slug: str, request: Request, session: DbSession) -> Response:
    """Step 1 of a new contact for an existing account: prove the account."""
    return _claim_page(request, service.claim_storefront(session, slug), Form(prefix="claim"))


@storefront_pages.post("/register/contact")
def claim(slug: str, request: Request, session: DbSession, form: Fields) -> Response:
    """Check the proof; on success show the account's basic details and the create-login form."""
    storefront = service.claim_storefront(session, slug)
    try:
        body = ClaimIn.model_validate(form)
        account_id = service.match_account(session, request.app.state.rate_limits, storefront, body,
                                           client_address(request))
    except REFUSED as exc:
        errors, status, headers = _refusal(exc)
        return _claim_page(request, storefront, Form.refused(form, errors, "claim"), status, headers)
    proof = service.issue_claim(session, storefront, account_id)
    return _login_page(request, storefront, proof["claim_token"], proof["account"], Form(prefix="login"))


@storefront_pages.post("/register/contact/login")
def add_contact(slug: str, request: Request, session: DbSession, form: Fields) -> Response:
    """Step 2: create the visitor's login on the proven account."""
    storefront = service.claim_storefront(session, slug)
    token = form.get("claim_token", "")
    differ = _password_problems(form)
    try:
        person_in = ClaimContactIn.model_validate(_in_page_language(request, storefront, form))
        person, password = service.prepare_new_contact(session, storefront, token, person_in, differ)
        timed = service.evenly_timed(session)
        with session.begin_nested():  # a refusal shows the form again with nothing of this attempt kept
            outcome = timed(service.add_claimed_contact(session, storefront.id, token, person, password,
                                                        request.app.state.settings.base_url))
    except ValidationFailed as exc:
        if exc.code == "claim_expired":
            return _claim_page(request, storefront, Form.refused({}, {"form": exc.message}, "claim"), 422)
        return _login_page(request, storefront, token, service.claim_details(session, storefront, token),
                           Form.refused(form, field_errors(exc), "login"), 422)
    except ValidationError as exc:
        return _login_page(request, storefront, token, service.claim_details(session, storefront, token),
                           Form.refused(form, differ | field_errors(exc), "login"), 422)
    return _received(request, storefront, session, outcome)


# --- e-mail verification -------------------------------------------------------------------------------------------

# What the page a verification link opens may offer the registrant who has just proved their address (domains:
# joining their company's account): each returns template values with a "template" to include, or None. Packages
# above registration add themselves here.
VERIFIED_OFFERS: list[Callable[[Session, Contact], dict[str, Any] | None]] = []


@storefront_pages.get("/verify-email")
def verify_email(request: Request, session: DbSession, storefront: CurrentStorefront, token: LinkToken) -> Response:
    """The link of the verification e-mail: confirms the address once."""
    try:
        contact, problem = service.verify_email(session, storefront, token), ""
    except ValidationFailed as exc:
        contact, problem = None, later(exc.message)
    offers = [offer for make in VERIFIED_OFFERS if contact is not None and (offer := make(session, contact))]
    return page(request, "registration/verify_email.html", {"storefront": storefront, "contact": contact,
                                                              "problem": problem, "offers": offers},
                400 if problem else 200)


# --- console: the approval queue -----------------------------------------------------------------------------------

@console_pages.get("")
def queue(request: Request, session: DbSession, staff: Approver, q: Annotated[str, Query(max_length=200)] = "",
          storefront: str = "", status: Literal["pending_approval", "rejected"] = "pending_approval",
          page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    """Registrations waiting for a decision (or rejected) and new contacts waiting for approval."""
    storefront_id = validation.parse_id(storefront)
    rows, total = service.account_requests(session, status=status, storefront_id=storefront_id, q=q, page=page_no)
    waiting_contacts = service.contact_requests(session, storefront_id=storefront_id, q=q) \
        if status == "pending_approval" else []
    return page(request, "registration/queue.html", {
        "staff": staff, "requests": service.describe_requests(session, rows), "total": total,
        "contact_requests": service.describe_contact_requests(session, waiting_contacts),
        "storefronts": service.storefront_choices(session), "filters": {"q": q, "storefront": storefront,
                                                                          "status": status},
        "page_no": page_no, "has_next": page_no * 25 < total})


def _contact_request_page(request: Request, session: Session, staff: StaffPrincipal, contact_id: int,
                          form: Form | None = None, status: int = 200) -> Response:
    contact = service.get_contact_request(session, contact_id)
    return page(request, "registration/contact_request.html", {
        "staff": staff, "item": service.describe_contact_request(session, contact),
        "form": form or Form(prefix="reject")}, status)


@console_pages.get("/contacts/{contact_id}")
def contact_request(contact_id: Id, request: Request, session: DbSession, staff: Approver) -> Response:
    """A new contact for an existing account: who, which account; approve or reject."""
    return _contact_request_page(request, session, staff, contact_id)


@console_pages.post("/contacts/{contact_id}/approve")
def approve_contact(contact_id: Id, request: Request, session: DbSession, staff: Approver, form: Fields) -> Response:
    """Approve a new contact, once confirmed; a second decision is refused with a message."""
    here = f"/console/approvals/contacts/{contact_id}"
    if not confirmed(form):
        contact = service.get_contact_request(session, contact_id)
        return confirmation_page(request, Confirmation(
            filled(_l("Approve %(name)s?"), name=contact.name),
            filled(_l("%(name)s (%(email)s) can sign in for %(account)s and is told so by e-mail."),
                   name=contact.name, email=contact.email, account=contact.account.name),
            _l("Yes, approve"), f"{here}/approve", here), {"staff": staff})
    try:
        contact = service.approve_contact(session, staff.actor, contact_id, request.app.state.settings.base_url)
    except Conflict as exc:
        return flash_redirect(request, here, exc.message)
    return flash_redirect(request, "/console/approvals", _l(
        "Approved %(name)s for the account %(account)s (%(number)s); they were told they may sign in to it.",
        name=contact.name, account=contact.account.name, number=contact.account.number))


@console_pages.post("/contacts/{contact_id}/reject")
def reject_contact(contact_id: Id, request: Request, session: DbSession, staff: Approver, form: Fields) -> Response:
    """Reject a new contact with a reason that is e-mailed to them, once confirmed."""
    here = f"/console/approvals/contacts/{contact_id}"
    try:
        body = RejectIn.model_validate(form)
    except ValidationError as exc:
        return _contact_request_page(request, session, staff, contact_id, Form.refused(form, field_errors(exc),
                                                                                       "reject"), 422)
    if not confirmed(form):
        contact = service.get_contact_request(session, contact_id)
        return confirmation_page(request, _rejection(contact.name, contact.email, body.reason, here), {"staff": staff})
    try:
        contact = service.reject_contact(session, staff.actor, contact_id, body.reason)
    except Conflict as exc:
        return flash_redirect(request, here, exc.message)
    return flash_redirect(request, "/console/approvals", _l("Rejected %(name)s; they were told by e-mail.",
                                                            name=contact.name))


def _rejection(name: str, email: str, reason: str, here: str) -> Confirmation:
    """The question before a rejection, which carries the reason typed to "Yes"."""
    return Confirmation(filled(_l("Reject %(name)s?"), name=name),
                        filled(_l("%(email)s is told by e-mail that the request was rejected, with your reason: "
                                  "“%(reason)s”."), email=email, reason=reason),
                        _l("Yes, reject"), f"{here}/reject", here, danger=True, fields={"reason": reason})


def _request_page(request: Request, session: Session, staff: StaffPrincipal, account_id: int,
                  form: Form | None = None, status: int = 200) -> Response:
    account = service.get_request(session, account_id)
    return page(request, "registration/request.html", {
        "staff": staff, "item": service.describe_request(session, account), "form": form or Form(prefix="reject")},
        status)


@console_pages.get("/{account_id}")
def account_request(account_id: Id, request: Request, session: DbSession, staff: Approver) -> Response:
    """One registration: company, contact, address, when; approve or reject with a reason."""
    return _request_page(request, session, staff, account_id)


@console_pages.post("/{account_id}/approve")
def approve(account_id: Id, request: Request, session: DbSession, staff: Approver, form: Fields) -> Response:
    """Approve a registration, once confirmed; a second decision is refused with a message."""
    here = f"/console/approvals/{account_id}"
    if not confirmed(form):
        account = service.get_request(session, account_id)
        return confirmation_page(request, Confirmation(
            filled(_l("Approve %(name)s?"), name=account.name),
            filled(_l("The account %(number)s opens and the registrant is told by e-mail that they can sign in."),
                   number=account.number),
            _l("Yes, approve"), f"{here}/approve", here), {"staff": staff})
    try:
        account = service.approve_account(session, staff.actor, account_id, request.app.state.settings)
    except Conflict as exc:
        return flash_redirect(request, f"/console/approvals/{account_id}", exc.message)
    return flash_redirect(request, "/console/approvals",
                          _l("Approved %(account)s (%(number)s); the registrant was told by e-mail.",
                             account=account.name, number=account.number))


@console_pages.post("/{account_id}/reject")
def reject(account_id: Id, request: Request, session: DbSession, staff: Approver, form: Fields) -> Response:
    """Reject a registration with a reason that is e-mailed to the registrant."""
    try:
        body = RejectIn.model_validate(form)
    except ValidationError as exc:
        return _request_page(request, session, staff, account_id, Form.refused(form, field_errors(exc), "reject"),
                             422)
    if not confirmed(form):
        item = service.describe_request(session, service.get_request(session, account_id))
        email = item["contacts"][0]["email"] if item["contacts"] else item["name"]
        return confirmation_page(request, _rejection(item["name"], email, body.reason,
                                                     f"/console/approvals/{account_id}"), {"staff": staff})
    try:
        account = service.reject_account(session, staff.actor, account_id, body.reason)
    except Conflict as exc:
        return flash_redirect(request, f"/console/approvals/{account_id}", exc.message)
    return flash_redirect(request, "/console/approvals",
                          _l("Rejected %(account)s (%(number)s); the registrant was told by e-mail.",
                             account=account.name, number=account.number))


router = APIRouter(include_in_schema=False)
router.include_router(storefront_pages)
router.include_router(console_pages)
