"""Every table, imported in one place so that Alembic and the tests see the whole schema."""

from accountdesk.accounts.models import Account, Address, CustomAttributeDefinition, CustomAttributeValue, Invoice
from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.contacts.models import Contact
from accountdesk.core.db import Base
from accountdesk.core.models import AuditEvent, AuthSession, NumberSequence, OutboxMessage, RateLimitHit, SingleUseToken
from accountdesk.orders.models import Order, OrderLine
from accountdesk.resellers.models import Subscription
from accountdesk.staff.models import StaffRecoveryCode, StaffUser
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = ["Account", "Address", "AuditEvent", "AuthSession", "Base", "Cart", "CartLine", "Contact",
           "CustomAttributeDefinition", "CustomAttributeValue", "Favourite", "Invoice", "NumberSequence", "Order",
           "OrderLine", "OutboxMessage", "RateLimitHit", "SingleUseToken", "StaffRecoveryCode", "StaffUser",
           "Storefront", "Subscription", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]
