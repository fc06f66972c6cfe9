"""Company e-mail domains API for staff: claim, check the DNS record, verify directly, remove, and how registrants
on a verified domain join the account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from accountdesk.accounts import service as accounts
from accountdesk.core import i18n
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.domains import service
from accountdesk.domains.schemas import DomainCheckOut, DomainIn, DomainJoinIn, DomainOut, DomainsOut
from accountdesk.staff.deps import api_staff
from accountdesk.staff.models import StaffRole
from accountdesk.staff.service import MANAGE_CUSTOMERS, READ, StaffPrincipal

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/accounts/{account_id}", tags=["e-mail domains"])
Reader = Annotated[StaffPrincipal, Depends(api_staff(READ))]
Manager = Annotated[StaffPrincipal, Depends(api_staff(MANAGE_CUSTOMERS))]
# Vouching for a domain without the DNS proof is for the operator's own staff.
Verifier = Annotated[StaffPrincipal, Depends(api_staff(frozenset({StaffRole.admin, StaffRole.csr})))]


@router.get("/domains", response_model=DomainsOut)
def list_domains(account_id: Id, session: DbSession, staff: Reader) -> DomainsOut:
    """The account's claimed e-mail domains and how registrants on them join."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return DomainsOut(domain_join=account.domain_join,
                      domains=[DomainOut(**service.describe(d)) for d in service.domains_of(session, account)])


@router.post("/domains", status_code=201, response_model=DomainOut, dependencies=[IDEMPOTENT])
def claim_domain(account_id: Id, body: DomainIn, session: DbSession, staff: Manager) -> DomainOut:
    """Claim a domain for a company account; publish its `txt_record` at the domain, then run the DNS check."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    return DomainOut(**service.describe(service.claim(session, staff.actor, account, body.domain)))


@router.post("/domains/{domain_id}/dns-check", response_model=DomainCheckOut)
def check_domain(account_id: Id, domain_id: Id, request: Request, session: DbSession,
                 staff: Manager) -> DomainCheckOut:
    """Look up the domain's TXT records now; verified when the claim's record is there (`problem` says why not)."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    row = service.get_domain(session, account, domain_id)
    domain, expected = row.domain, service.txt_record(row)
    session.commit()  # no transaction (nor SQLite's write lock) is held while the DNS answers
    check = service.record_found(request.app.state.settings, domain, expected)
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    row = service.get_domain(session, account, domain_id)
    if check.verified:
        service.mark_verified(session, staff.actor, account, row, "dns")
    with i18n.speaking(i18n.request_language(request)):
        problem = i18n.translate(check.problem)
    return DomainCheckOut(**service.describe(row), problem=problem)


@router.post("/domains/{domain_id}/verify", response_model=DomainOut)
def verify_domain(account_id: Id, domain_id: Id, session: DbSession, staff: Verifier) -> DomainOut:
    """Verify the domain without the DNS record (staff know the company owns it)."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    row = service.get_domain(session, account, domain_id)
    service.mark_verified(session, staff.actor, account, row, "staff")
    return DomainOut(**service.describe(row))


@router.delete("/domains/{domain_id}", status_code=204)
def remove_domain(account_id: Id, domain_id: Id, session: DbSession, staff: Manager) -> Response:
    """Give up the domain: registrants on it are no longer offered this account."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    service.remove(session, staff.actor, account, service.get_domain(session, account, domain_id))
    return Response(status_code=204)


@router.put("/domain-join", response_model=DomainsOut)
def set_domain_join(account_id: Id, body: DomainJoinIn, session: DbSession, staff: Manager) -> DomainsOut:
    """Whether registrants on a verified domain wait for the account admin's approval or join at once."""
    account = accounts.get_account(session, staff.reseller_scope, account_id)
    service.set_join_mode(session, staff.actor, account, body.mode)
    return list_domains(account_id, session, staff)
