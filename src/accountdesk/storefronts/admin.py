"""Staff API for storefronts and their registration policies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import api_staff
from accountdesk.staff.service import ADMIN, OPERATOR, StaffPrincipal
from accountdesk.storefronts import policy
from accountdesk.storefronts.policy import PolicyFields, StorefrontCreate

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/storefronts", tags=["storefronts"])
Operator = Annotated[StaffPrincipal, Depends(api_staff(OPERATOR))]
Admin = Annotated[StaffPrincipal, Depends(api_staff(ADMIN))]


@router.get("")
def list_storefronts(session: DbSession, staff: Operator) -> list[dict[str, Any]]:
    """Every storefront with its registration policy."""
    return [policy.describe(s) for s in policy.list_storefronts(session)]


@router.post("", status_code=201, dependencies=[IDEMPOTENT])
def create_storefront(body: StorefrontCreate, session: DbSession, staff: Admin) -> dict[str, Any]:
    """Create a storefront; unspecified policy settings take safe defaults."""
    return policy.describe(policy.create(session, staff.actor, body.model_dump(exclude_none=True)))


@router.get("/{slug}/policy")
def read_policy(slug: str, session: DbSession, staff: Operator) -> dict[str, Any]:
    """One storefront's full registration policy."""
    return policy.describe(policy.by_slug(session, slug))


@router.patch("/{slug}/policy")
def update_policy(slug: str, body: PolicyFields, session: DbSession, staff: Admin) -> dict[str, Any]:
    """Change some settings of a storefront's registration policy (recorded in the history)."""
    storefront = policy.by_slug(session, slug)
    policy.update(session, staff.actor, storefront, body.model_dump(exclude_unset=True, exclude_none=True))
    return policy.describe(storefront)
