"""The rules for orders: when a customer's orders need the reseller's approval, the reseller's markup, totals,
statuses, and accepting or canceling a pending order (exactly one decision wins)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, PaymentMethod
from accountdesk.contacts.models import Contact
from accountdesk.core import audit, exports, history, sequences
from accountdesk.core.audit import Actor
from accountdesk.core.db import utcnow
from accountdesk.core.errors import Conflict, NotFound, ValidationFailed
from accountdesk.core.i18n import _l, speaking
from accountdesk.core.languages import LANGUAGES
from accountdesk.orders.models import Order, OrderLine, OrderStatus, PlacedBy
from accountdesk.registration import erp
from accountdesk.storefronts.models import ErpSync, Storefront
from accountdesk.webhooks import events as webhooks

CENT = Decimal("0.01")
NUMBER_PREFIX = "SO-"
FORCED_MESSAGE = "The payment method set by your distributor requires order approval for all customers."
PRICE_NOT_ALLOWED = _l("Leave the price out: prices come from your distributor, not from the storefront user.")
EXPORT_COLUMNS = (exports.Column(_l("Order #"), width=14), exports.Column(_l("Placed by"), width=12),
                  exports.Column(_l("Status"), width=26), exports.Column(_l("Order date"), "datetime", width=18),
                  exports.Column(_l("Total cost"), "money", width=14),
                  exports.Column(_l("Total amount"), "money", width=14), exports.Column(_l("Currency"), width=10))


# --- approval and markup ---------------------------------------------------------------------------------------

def approval_forced(reseller: Account | None) -> bool:
    """A reseller paying its distributor by credit card must approve every order of every customer (so that end
    customers cannot run up charges on the reseller's card)."""
    return reseller is not None and reseller.payment_method == PaymentMethod.credit_card


def approval_required(customer: Account, reseller: Account | None) -> bool:
    return approval_forced(reseller) or customer.order_approval_required


def set_order_approval(session: Session, actor: Actor, customer: Account, reseller: Account | None,
                       required: bool) -> None:
    if not required and approval_forced(reseller):
        raise Conflict(FORCED_MESSAGE, code="order_approval_forced")
    accounts.update_account(session, actor, customer, {"order_approval_required": required})


def markup_for(customer: Account, reseller: Account | None) -> Decimal:
    """The customer's own markup when set, else its reseller's; none without a reseller."""
    if customer.markup_override_percent is not None:
        return customer.markup_override_percent
    return reseller.markup_percent if reseller is not None else Decimal("0")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- placing ---------------------------------------------------------------------------------------------------

def next_order_number(session: Session) -> str:
    return f"{NUMBER_PREFIX}{sequences.next_value(session, 'order:' + NUMBER_PREFIX):06d}"


def _status(lines: Sequence[OrderLine], needs_approval: bool) -> str:
    if needs_approval:
        return OrderStatus.pending_approval
    return OrderStatus.executed if all(line.auto_provisioned for line in lines) else OrderStatus.in_progress


def _check_prices(lines: Sequence[dict[str, Any]], may_price: bool) -> None:
    """Only a caller whose credential may decide prices (staff; later a storefront's backend) sends them: a
    buyer's own token may not, so that no buyer sets their own price."""
    if may_price:
        return
    priced = {f"lines.{i}.unit_cost": PRICE_NOT_ALLOWED for i, line in enumerate(lines)
              if line.get("unit_cost") is not None}
    if priced:
        raise ValidationFailed(PRICE_NOT_ALLOWED, code="price_not_allowed", fields=priced)


def _line(line: dict[str, Any]) -> OrderLine:
    unit_cost = line.get("unit_cost")
    return OrderLine(sku=line["sku"], name=line.get("name", ""), quantity=line["quantity"], unit_cost=unit_cost,
                     auto_provisioned=line.get("auto_provisioned", True),
                     line_cost=None if unit_cost is None else cents(line["quantity"] * unit_cost))


def _total_cost(lines: Sequence[dict[str, Any]]) -> Decimal | None:
    """The sum of the lines' costs; None (to be priced) while any line has no price."""
    if any(line.get("unit_cost") is None for line in lines):
        return None
    return cents(sum((line["quantity"] * line["unit_cost"] for line in lines), Decimal("0")))


def place_order(session: Session, actor: Actor, customer: Account, reseller: Account | None,
                lines: Sequence[dict[str, Any]], *, may_price: bool, contact: Contact | None = None,
                staff_id: int | None = None) -> Order:
    """An order by a customer's contact (`contact`) or by reseller staff on the customer's behalf (`staff_id`).
    Only customer-placed orders wait for approval; the others go straight to in progress or executed.
    `may_price`: whether the caller's credential may put prices on the lines (422 price_not_allowed otherwise);
    lines without a price are recorded unpriced and the order's totals stay None until it is priced."""
    if not customer.is_active:
        raise Conflict("This customer's account is not active, so it cannot order.", code="account_inactive")
    _check_prices(lines, may_price)
    rows = [_line(line) for line in lines]
    total_cost = _total_cost(lines)
    markup = markup_for(customer, reseller)
    placed_by = PlacedBy.customer if contact is not None else PlacedBy.reseller
    order = Order(number=next_order_number(session), account_id=customer.id,
                  reseller_account_id=reseller.id if reseller else None, placed_by=placed_by,
                  placed_by_contact_id=contact.id if contact else None, placed_by_staff_id=staff_id,
                  status=_status(rows, placed_by == PlacedBy.customer and approval_required(customer, reseller)),
                  currency=customer.currency, total_cost=total_cost, markup_percent=markup,
                  total_amount=None if total_cost is None else cents(total_cost * (1 + markup / 100)), lines=rows)
    session.add(order)
    session.flush()
    _push_new_web_account(session, customer, order)
    audit.record(session, actor, "order.placed", subject_type="order", subject_id=order.id, account_id=customer.id,
                 changes={"number": [None, order.number], "status": [None, order.status],
                          "total_amount": [None, None if order.total_amount is None else str(order.total_amount)]})
    webhooks.order_event(session, "order.placed", order, customer)
    return order


def _push_new_web_account(session: Session, customer: Account, order: Order) -> None:
    """A web account not yet in the ERP is pushed there with its first order, where the storefront says so."""
    storefront = session.get(Storefront, customer.storefront_id) if customer.storefront_id else None
    if storefront is not None and not customer.erp_code:
        erp.push_per_policy(session, customer, storefront, ErpSync.on_first_order, f"first order {order.number}")


# --- reading ---------------------------------------------------------------------------------------------------

def get_order(session: Session, reseller_id: int, order_id: int) -> Order:
    """One of the reseller's orders; any other order answers 404 as if it did not exist."""
    order = session.scalar(select(Order).where(Order.id == order_id, Order.reseller_account_id == reseller_id)
                           .options(selectinload(Order.lines)))
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


def order_of(session: Session, customer: Account, order_id: int) -> Order:
    """One order of the customer, with its lines; any other order answers 404 as if it did not exist."""
    order = session.scalar(select(Order).where(Order.id == order_id, Order.account_id == customer.id)
                           .options(selectinload(Order.lines)))
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    return order


def _statuses_matching(word: str) -> list[str]:
    """The order statuses a search word names: by code or by its words in any of the product's languages."""
    def words(status: OrderStatus) -> list[str]:
        texts = [status.value]
        for language in LANGUAGES:
            with speaking(language):
                texts.append(history.status_label(status).lower())
        return texts
    return [status.value for status in OrderStatus if any(word in text for text in words(status))]


def orders_query(customer: Account, q: str = "") -> Select[tuple[Order]]:
    """The customer's orders, newest first; every word of `q` must match the number, the status or a line's SKU."""
    stmt = select(Order).where(Order.account_id == customer.id)
    for word, term in zip(q.lower().split(), accounts.like_terms(q), strict=False):
        sku = exists().where(OrderLine.order_id == Order.id, func.lower(OrderLine.sku).like(term, escape="\\"))
        stmt = stmt.where(or_(func.lower(Order.number).like(term, escape="\\"),
                              Order.status.in_(_statuses_matching(word)), sku))
    return stmt.order_by(Order.id.desc())


@dataclass
class OrderPage:
    items: list[Order]
    total: int


def list_orders(session: Session, customer: Account, *, q: str = "", page: int = 1, per_page: int = 25) -> OrderPage:
    stmt = orders_query(customer, q)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = session.scalars(stmt.options(selectinload(Order.lines)).limit(per_page).offset((page - 1) * per_page))
    return OrderPage(list(items), total)


def export_rows(session: Session, customer: Account, q: str = "") -> Iterator[Sequence[Any]]:
    """The searched orders as the export's columns, read in batches from the database."""
    stmt = orders_query(customer, q).with_only_columns(
        Order.number, Order.placed_by, Order.status, Order.created_at, Order.total_cost, Order.total_amount,
        Order.currency, maintain_column_froms=True)
    for number, placed_by, status, created_at, cost, amount, currency in exports.stream_rows(session, stmt):
        yield (number, history.value_text("placed_by", placed_by), history.status_label(status), created_at, cost,
               amount, currency)


def describe(order: Order) -> dict[str, Any]:
    from accountdesk.orders.schemas import OrderOut

    return OrderOut.model_validate(order).model_dump(mode="json")


# --- deciding --------------------------------------------------------------------------------------------------

def decide(session: Session, actor: Actor, order: Order, *, accept: bool, staff_id: int | None) -> Order:
    """Accept (in progress, or executed when every product is provisioned automatically) or cancel a pending order.
    One conditional UPDATE decides: of two racing decisions the second finds the order no longer pending (409)."""
    target = _status(order.lines, False) if accept else OrderStatus.canceled
    result = session.execute(update(Order).where(Order.id == order.id,
                                                 Order.status == OrderStatus.pending_approval)
                             .values(status=target, decided_at=utcnow(), decided_by_staff_id=staff_id)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict("This order has already been accepted or canceled.", code="order_already_decided")
    session.refresh(order)
    audit.record(session, actor, "order.accepted" if accept else "order.canceled", subject_type="order",
                 subject_id=order.id, account_id=order.account_id,
                 changes={"status": [OrderStatus.pending_approval.value, order.status]})
    webhooks.order_event(session, "order.accepted" if accept else "order.canceled", order,
                         session.get(Account, order.account_id))
    return order
