"""A contact's cart and favourites: every login (contact) has its own, even when one e-mail owns several."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accountdesk.core.db import Base, BigId, UtcDateTime, utcnow


class Cart(Base):
    """The contact's one active cart."""

    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), unique=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[CartLine]] = relationship(back_populates="cart", order_by="CartLine.id",
                                                 cascade="all, delete-orphan")


class CartLine(Base):
    __tablename__ = "cart_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 4))

    cart: Mapped[Cart] = relationship(back_populates="lines")

    __table_args__ = (UniqueConstraint("cart_id", "sku"),)


class Favourite(Base):
    """A product the contact keeps on their favourites list."""

    __tablename__ = "favourites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("contact_id", "sku"),)
