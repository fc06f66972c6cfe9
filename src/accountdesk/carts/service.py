"""The rules for a contact's cart and favourites. They belong to the login (contact), not to the person's e-mail
or to the account: two logins of one e-mail never share a cart. A login's own changes are not audited (they change
no account or contact); staff copying an order into a login's cart is, in the account's history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.carts.schemas import MAX_LINES, CartLineIn, FavouriteIn
from accountdesk.contacts.models import Contact
from accountdesk.core import audit
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.errors import NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.orders.models import Order, OrderLine

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
    _add(cart, wanted)
    return _saved(session, cart)


def _add(cart: Cart, wanted: CartLineIn) -> None:
    line = next((line for line in cart.lines if line.sku == wanted.sku), None)
    if line is None:
        if len(cart.lines) >= MAX_LINES:
            raise ValidationFailed(f"A cart holds at most {MAX_LINES} lines.", code="cart_full")
        cart.lines.append(CartLine(sku=wanted.sku, name=wanted.name, quantity=wanted.quantity,
                                   unit_price=wanted.unit_price))
    else:
        _fill(line, wanted.model_copy(update={"quantity": line.quantity + wanted.quantity}))


def copy_order(session: Session, actor: Actor, order: Order, contact: Contact) -> Cart:
    """Put the order's lines into the login's cart as add_line does (a product already there gets the quantity
    added), at the price the customer paid per unit; a line still to be priced goes in at 0 for the storefront to
    price. Only a login of the order's account; in the account's history."""
    if contact.account_id != order.account_id:
        raise field_error("contact_id", _l("Choose a login of this customer."))
    cart = cart_for(session, contact)
    for line in order.lines:
        _add(cart, CartLineIn(sku=line.sku, name=line.name, quantity=line.quantity, unit_price=_paid(order, line)))
    audit.record(session, actor, "cart.order_copied", subject_type="contact", subject_id=contact.id,
                 account_id=contact.account_id, note=contact.email,
                 changes={"order": order.number, "lines": len(order.lines)})
    return _saved(session, cart)


def _paid(order: Order, line: OrderLine) -> Decimal:
    """The line's unit price to the customer: its cost with the order's markup (4 decimals, as cart prices)."""
    if line.unit_cost is None:
        return Decimal("0")
    return (line.unit_cost * (1 + order.markup_percent / 100)).quantize(Decimal("0.0001"))


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


@dataclass(frozen=True)
class LoginCart:
    """A login's active cart and favourites, as the console's account record shows them."""

    contact: Contact
    cart: Cart
    favourites: list[Favourite]

    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.cart.lines), Decimal("0")).quantize(CENT)


def carts_of(session: Session, contacts: list[Contact]) -> list[LoginCart]:
    """Each login's cart (empty when it has none) and favourites, in three queries whatever their number."""
    ids = [contact.id for contact in contacts]
    carts = {cart.contact_id: cart for cart in session.scalars(
        select(Cart).where(Cart.contact_id.in_(ids)).options(selectinload(Cart.lines)))} if ids else {}
    favourites: dict[int, list[Favourite]] = {contact_id: [] for contact_id in ids}
    if ids:
        for favourite in session.scalars(select(Favourite).where(Favourite.contact_id.in_(ids))
                                         .order_by(Favourite.id)):
            favourites[favourite.contact_id].append(favourite)
    return [LoginCart(contact, carts.get(contact.id) or Cart(contact_id=contact.id, lines=[]), favourites[contact.id])
            for contact in contacts]


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
