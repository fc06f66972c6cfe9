"""Storefront API around a signed-in login: switching between the logins of one e-mail (after the ERP check) and
completing the re-verification of an expired login. Rules: signin.switcher, signin.erp_check and
signin.reverification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from accountdesk.contacts.models import Contact
from accountdesk.core.errors import AppError
from accountdesk.core.web import DbSession, get_db, refusal
from accountdesk.erp.deps import Erp
from accountdesk.signin import erp_check, reverification, switcher
from accountdesk.signin.schemas import ReverificationIn, SwitchIn
from accountdesk.signin.session import ApiContact, CurrentStorefront, api_sign_in_body

router = APIRouter(prefix="/api/v1")


def _refused(request: Request, exc: AppError) -> JSONResponse:
    """A refusal answered rather than raised, so that what the checks recorded is committed."""
    return refusal(request, exc)


@router.get("/storefronts/{slug}/switchable-accounts", tags=["storefront accounts"])
def switchable_accounts(session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """The logins of this e-mail the signed-in account admin may switch to (same customer group)."""
    return {"current_contact_id": signed_in.contact.id, "accounts": [
        {"contact_id": c.id, "account_id": c.account_id, "account_number": c.account.number,
         "account_name": c.account.name, "customer_group": c.account.customer_group,
         "current": c.id == signed_in.contact.id} for c in switcher.switchable(session, signed_in.contact)]}


@router.post("/storefronts/{slug}/switch", status_code=201, tags=["storefront accounts"])
def switch_account(slug: str, body: SwitchIn, request: Request, session: DbSession, erp: Erp) -> Any:
    """Switch to another login without signing in again: this token ends, a new one is returned."""
    signed_in, target = switcher.prepare_switch(get_db(request), request, slug, body.contact_id)
    try:
        erp_check.verify_sign_in(session, erp, signed_in.storefront, target)
    except AppError as exc:
        return _refused(request, exc)
    token = switcher.switch_api_session(session, signed_in, target, request.app.state.settings)
    return api_sign_in_body(token, session.get(Contact, target.id), request.app.state.settings)


@router.post("/storefronts/{slug}/reverifications", tags=["storefront sign-in"])
def complete_reverification(body: ReverificationIn, session: DbSession,
                            storefront: CurrentStorefront) -> dict[str, str]:
    """Confirm an expired login with the token of its re-verification link; the password stays the same."""
    reverification.reverify(session, storefront, body.token)
    return {"status": "reverified"}
