"""Storefront API: the signed-in contact's own cart and favourites (each login has its own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from accountdesk.carts import service
from accountdesk.carts.models import Cart
from accountdesk.carts.schemas import CartIn, CartLineIn, FavouriteIn
from accountdesk.core.idempotency import IDEMPOTENT, ApiRoute
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.signin.session import ApiContact

router = APIRouter(route_class=ApiRoute, prefix="/api/v1/storefronts/{slug}", tags=["storefront cart and favourites"])


def _cart(signed_in: ApiContact, cart: Cart) -> dict[str, Any]:
    return service.describe_cart(cart, signed_in.contact.account.currency)


@router.get("/cart")
def read_cart(session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """The signed-in login's cart."""
    return _cart(signed_in, service.current_cart(session, signed_in.contact))


@router.put("/cart")
def replace_cart(body: CartIn, session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """Replace the whole cart with these lines (an empty list empties it)."""
    return _cart(signed_in, service.replace_lines(session, signed_in.contact, body.lines))


@router.post("/cart/lines", status_code=201, dependencies=[IDEMPOTENT])
def add_cart_line(body: CartLineIn, session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """Add a product; one already in the cart gets the quantity added."""
    return _cart(signed_in, service.add_line(session, signed_in.contact, body))


@router.delete("/cart/lines/{line_id}", status_code=204)
def remove_cart_line(line_id: Id, session: DbSession, signed_in: ApiContact) -> Response:
    """Take one line out of the cart."""
    service.remove_line(session, signed_in.contact, line_id)
    return Response(status_code=204)


@router.get("/favourites")
def list_favourites(session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """The signed-in login's favourite products."""
    return {"items": [service.describe_favourite(f) for f in service.favourites(session, signed_in.contact)]}


@router.post("/favourites", status_code=201, responses={200: {"description": "It was already a favourite"}},
             dependencies=[IDEMPOTENT])
def add_favourite(body: FavouriteIn, response: Response, session: DbSession, signed_in: ApiContact) -> dict[str, Any]:
    """Keep a product on the list (200 when it was already there)."""
    favourite, created = service.add_favourite(session, signed_in.contact, body)
    if not created:
        response.status_code = 200
    return service.describe_favourite(favourite)


@router.delete("/favourites/{favourite_id}", status_code=204)
def remove_favourite(favourite_id: Id, session: DbSession, signed_in: ApiContact) -> Response:
    """Take a product off the list."""
    service.remove_favourite(session, signed_in.contact, favourite_id)
    return Response(status_code=204)
