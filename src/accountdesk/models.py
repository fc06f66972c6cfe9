"""Every table, imported in one place so that Alembic and the tests see the whole schema."""

from accountdesk.accounts.models import (
    Account,
    Address,
    CustomAttributeDefinition,
    CustomAttributeValue,
    Invoice,
    SavedPaymentMethod,
)
from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.contacts.models import Contact
from accountdesk.core.db import Base
from accountdesk.core.models import AuditEvent, AuthSession, NumberSequence, OutboxMessage, RateLimitHit, SingleUseToken
from accountdesk.domains.models import AccountDomain
from accountdesk.imports.models import Import
from accountdesk.oidc.models import AuthorizationCode, OidcClient, OidcToken, SigningKey, Subject
from accountdesk.orders.models import Order, OrderLine
from accountdesk.resellers.models import Subscription
from accountdesk.staff.models import StaffRecoveryCode, StaffUser
from accountdesk.storefronts.models import Storefront
from accountdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = ["Account", "AccountDomain", "Address", "AuditEvent", "AuthSession", "AuthorizationCode", "Base", "Cart",
           "CartLine", "Contact", "CustomAttributeDefinition", "CustomAttributeValue", "Favourite", "Import",
           "Invoice", "NumberSequence", "OidcClient", "OidcToken", "Order", "OrderLine", "OutboxMessage",
           "RateLimitHit", "SavedPaymentMethod", "SigningKey", "SingleUseToken", "StaffRecoveryCode", "StaffUser",
           "Storefront", "Subject", "Subscription", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]
