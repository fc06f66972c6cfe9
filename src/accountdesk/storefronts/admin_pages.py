"""Console pages for storefronts: the list, a new storefront, and the registration policy form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from accountdesk.core.i18n import _l
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.pages import Form, PageRoute, attempt, flash_redirect, form_fields, page
from accountdesk.core.web import DbSession
from accountdesk.staff.deps import console_page
from accountdesk.staff.service import ADMIN, OPERATOR, StaffPrincipal
from accountdesk.storefronts import policy
from accountdesk.storefronts.models import Storefront
from accountdesk.storefronts.policy import PolicyFields, StorefrontCreate

router = APIRouter(prefix="/console/storefronts", route_class=PageRoute, include_in_schema=False)
Operator = Annotated[StaffPrincipal, Depends(console_page(OPERATOR))]
Admin = Annotated[StaffPrincipal, Depends(console_page(ADMIN))]
Fields = Annotated[dict[str, str], Depends(form_fields)]
FLAGS = tuple(name for name, f in PolicyFields.model_fields.items() if f.annotation == bool | None)


def _policy_form(fields: dict[str, str]) -> dict[str, Any]:
    """The posted form as policy values: a missing checkbox is off (a language not ticked is not offered), an empty
    number is left unchanged."""
    data: dict[str, Any] = {k: v for k, v in fields.items() if k in PolicyFields.model_fields and k not in FLAGS}
    data = {k: v for k, v in data.items() if v != "" or PolicyFields.model_fields[k].annotation == str | None}
    offered = [code for code in LANGUAGES if f"languages.{code}" in fields]  # a checkbox per language
    texts = {code: fields[f"sign_in_text_translations.{code}"] for code in LANGUAGES
             if f"sign_in_text_translations.{code}" in fields}
    return data | {flag: flag in fields for flag in FLAGS} | {"languages": offered, "sign_in_text_translations": texts}


def _edit_page(request: Request, staff: StaffPrincipal, storefront: Storefront, form: Form | None = None,
               status: int = 200) -> Response:
    return page(request, "storefronts/policy.html", {"staff": staff, "storefront": storefront,
                                                     "current": policy.describe(storefront), "form": form or Form(),
                                                     "editable": staff.may(ADMIN),
                                                     "languages": list(LANGUAGES.items())}, status)


@router.get("")
def list_storefronts(request: Request, session: DbSession, staff: Operator) -> Response:
    """Every storefront, with its registration mode."""
    return page(request, "storefronts/list.html", {"staff": staff, "storefronts": policy.list_storefronts(session),
                                                   "form": Form(), "may_create": staff.may(ADMIN)})


@router.post("")
def create_storefront(request: Request, session: DbSession, staff: Admin, fields: Fields) -> Response:
    """Create a storefront with default policy settings."""
    created, errors = attempt(session, lambda: policy.create(
        session, staff.actor, StorefrontCreate.model_validate(fields).model_dump(exclude_none=True)))
    if errors:
        return page(request, "storefronts/list.html", {"staff": staff, "storefronts": policy.list_storefronts(session),
                                                       "form": Form.refused(fields, errors), "may_create": True}, 422)
    return flash_redirect(request, f"/console/storefronts/{created.slug}", _l("Storefront created."))


@router.get("/{slug}")
def edit_policy(slug: str, request: Request, session: DbSession, staff: Operator) -> Response:
    """The storefront's registration policy (administrators change it)."""
    return _edit_page(request, staff, policy.by_slug(session, slug))


@router.post("/{slug}")
def save_policy(slug: str, request: Request, session: DbSession, staff: Admin, fields: Fields) -> Response:
    """Save the registration policy; refused values leave it unchanged and are shown beside their fields."""
    storefront = policy.by_slug(session, slug)
    changes, errors = attempt(session, lambda: _save(session, staff, storefront, fields))
    if errors:
        return _edit_page(request, staff, storefront, Form.refused(fields, errors), 422)
    return flash_redirect(request, f"/console/storefronts/{slug}",
                          _l("Policy saved.") if changes else _l("Nothing changed."))


def _save(session: Session, staff: StaffPrincipal, storefront: Storefront, fields: dict[str, str]) -> dict:
    values = PolicyFields.model_validate(_policy_form(fields)).model_dump(exclude_unset=True, exclude_none=True)
    return policy.update(session, staff.actor, storefront, values)
