"""The rules for a contact's cart and favourites. They belong to the login (contact), not to the person's e-mail
or to the account: two logins of one e-mail never share a cart. Not audited: they change no account or contact."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.carts.schemas import MAX_LINES, CartLineIn, FavouriteIn
from accountdesk.contacts.models import Contact
from accountdesk.core.db import utcnow
from accountdesk.core.errors import NotFound, ValidationFailed

CENT = Decimal("0.01")


def _locked_cart(session: Session, contact: Contact) -> Cart | None:
    return session.scalar(select(Cart).where(Cart.contact_id == contact.id)
                          .options(selectinload(Cart.lines)).with_for_update())


def current_cart(session: Session, contact: Contact) -> Cart:
    """The contact's cart to read; an empty one (not stored) when there is none yet."""
    cart = session.scalar(select(Cart).where(Cart.contact_id == contact.id).options(selectinload(Cart.lines)))
    return cart if cart is not None else Cart(contact_id=contact.id, lines=[])


def cart_for(session: Session, contact: Contact) -> Cart:
    """The contact's cart, created empty on first use; locked until the transaction ends, so that two requests
    of one login change it one after the other."""
    cart = _locked_cart(session, contact)
    if cart is not None:
        return cart
    try:
        with session.begin_nested():
            cart = Cart(contact_id=contact.id, lines=[])
            session.add(cart)
    except IntegrityError:  # another request of this login created it first
        cart = _locked_cart(session, contact)
    return cart


def _fill(line: CartLine, wanted: CartLineIn) -> None:
    line.name, line.quantity, line.unit_price = wanted.name, wanted.quantity, wanted.unit_price


def _saved(session: Session, cart: Cart) -> Cart:
    cart.updated_at = utcnow()  # a change of lines is a change of the cart
    session.flush()
    return cart


def replace_lines(session: Session, contact: Contact, lines: Iterable[CartLineIn]) -> Cart:
    """The cart becomes exactly these lines (a line keeps its id while its product stays)."""
    cart = cart_for(session, contact)
    wanted = {line.sku: line for line in lines}
    for line in list(cart.lines):
        if line.sku in wanted:
            _fill(line, wanted.pop(line.sku))
        else:
            cart.lines.remove(line)
    for sku, line in wanted.items():
        cart.lines.append(CartLine(sku=sku, name=line.name, quantity=line.quantity, unit_price=line.unit_price))
    return _saved(session, cart)


def add_line(session: Session, contact: Contact, wanted: CartLineIn) -> Cart:
    """Put a product in the cart; a product already there gets the quantity added and the new name and price."""
    cart = cart_for(session, contact)
    line = next((line for line in cart.lines if line.sku == wanted.sku), None)
    if line is None:
        if len(cart.lines) >= MAX_LINES:
            raise ValidationFailed(f"A cart holds at most {MAX_LINES} lines.", code="cart_full")
        cart.lines.append(CartLine(sku=wanted.sku, name=wanted.name, quantity=wanted.quantity,
                                   unit_price=wanted.unit_price))
    else:
        _fill(line, wanted.model_copy(update={"quantity": line.quantity + wanted.quantity}))
    return _saved(session, cart)


def remove_line(session: Session, contact: Contact, line_id: int) -> None:
    cart = cart_for(session, contact)
    line = next((line for line in cart.lines if line.id == line_id), None)
    if line is None:
        raise NotFound("No such line in your cart.", code="cart_line_not_found")
    cart.lines.remove(line)
    _saved(session, cart)


def _price(value: Decimal) -> str:
    """Cents as cents ("10.00"), finer prices as given ("0.0125")."""
    cents = value.quantize(CENT)
    return str(cents if cents == value else value.normalize())


def describe_cart(cart: Cart, currency: str) -> dict[str, Any]:
    lines = [{"id": line.id, "sku": line.sku, "name": line.name, "quantity": line.quantity,
              "unit_price": _price(line.unit_price),
              "line_total": str((line.unit_price * line.quantity).quantize(CENT))} for line in cart.lines]
    total = sum((line.unit_price * line.quantity for line in cart.lines), Decimal("0")).quantize(CENT)
    return {"contact_id": cart.contact_id, "currency": currency, "lines": lines, "total": str(total)}


# --- favourites ----------------------------------------------------------------------------------------------------

def favourites(session: Session, contact: Contact) -> list[Favourite]:
    return list(session.scalars(select(Favourite).where(Favourite.contact_id == contact.id).order_by(Favourite.id)))


def _favourite(session: Session, contact: Contact, sku: str) -> Favourite | None:
    return session.scalar(select(Favourite).where(Favourite.contact_id == contact.id, Favourite.sku == sku))


def add_favourite(session: Session, contact: Contact, wanted: FavouriteIn) -> tuple[Favourite, bool]:
    """Keep a product on the list; (the favourite, True when it was not there yet). Adding twice is harmless."""
    existing = _favourite(session, contact, wanted.sku)
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            favourite = Favourite(contact_id=contact.id, sku=wanted.sku, name=wanted.name)
            session.add(favourite)
    except IntegrityError:  # the same product added by a parallel request
        return _favourite(session, contact, wanted.sku), False
    return favourite, True


def remove_favourite(session: Session, contact: Contact, favourite_id: int) -> None:
    favourite = session.scalar(select(Favourite).where(Favourite.id == favourite_id,
                                                       Favourite.contact_id == contact.id))
    if favourite is None:
        raise NotFound("No such favourite.", code="favourite_not_found")
    session.delete(favourite)
    session.flush()


def describe_favourite(favourite: Favourite) -> dict[str, Any]:
    return {"id": favourite.id, "sku": favourite.sku, "name": favourite.name,
            "created_at": favourite.created_at.isoformat()}
