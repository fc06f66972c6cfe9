"""Orders placed by a customer's contact on the storefront or by reseller staff on the customer's behalf."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accountdesk.core import history
from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow
from accountdesk.core.i18n import _l, format_money


class OrderStatus(StrEnum):
    pending_approval = "pending_approval"
    in_progress = "in_progress"
    executed = "executed"
    canceled = "canceled"


UNPRICED = _l("to be priced")


class PlacedBy(StrEnum):
    customer = "customer"
    reseller = "reseller"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    reseller_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    placed_by: Mapped[str] = mapped_column(String(10))
    placed_by_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    placed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    # None until priced: an order placed with a buyer's own credential carries no prices (orders.service)
    total_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    markup_percent: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", order_by="OrderLine.id",
                                                  cascade="all, delete-orphan")

    __table_args__ = (Index("ix_orders_account_id_id", "account_id", "id"),)

    @property
    def status_label(self) -> str:
        """The status in the reader's words (core.history's, like every status)."""
        return history.status_label(self.status)

    @property
    def cost_label(self) -> str:
        return self._money(self.total_cost)

    @property
    def amount_label(self) -> str:
        return self._money(self.total_amount)

    def _money(self, value: Decimal | None) -> str:
        """A total as the reader's language writes it ("1 234,50 €"), or that the order is still to be priced."""
        return str(UNPRICED) if value is None else format_money(value, self.currency)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    line_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    auto_provisioned: Mapped[bool] = mapped_column(Boolean, default=True)

    order: Mapped[Order] = relationship(back_populates="lines")
