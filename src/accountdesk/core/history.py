"""How a history (core.audit's events) reads to people: every event and field name the services record, and the
values worth naming, as words in the reader's language. The one place that maps them: the history views
(console/_history.html) ask here, and tests/test_history_labels.py checks that every event the sources record and
every field of the records kept in a history has its words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accountdesk.core.i18n import _l, country_name, translate
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.validation import subdivision_name

NOTHING = "—"
SECRET = "•••"

ACTIONS: dict[str, Any] = {
    "account.activated": _l("Account activated"),
    "account.approved": _l("Account approved"),
    "account.created": _l("Account created"),
    "account.created_from_erp": _l("Account created from the ERP"),
    "account.deactivated": _l("Account deactivated"),
    "account.erp_push_requested": _l("Sending to the ERP requested"),
    "account.erp_push_retried": _l("Sending to the ERP tried again"),
    "account.erp_push_superseded": _l("Sending to the ERP no longer needed"),
    "account.erp_pushed": _l("Sent to the ERP"),
    "account.erp_remapped": _l("ERP customer code changed"),
    "account.rejected": _l("Account rejected"),
    "account.updated": _l("Account changed"),
    "address.added": _l("Address added"),
    "address.deleted": _l("Address deleted"),
    "address.updated": _l("Address changed"),
    "asset.recorded": _l("Asset recorded"),
    "asset.updated": _l("Asset changed"),
    "cart.order_copied": _l("Order copied into a cart"),
    "contact.activated": _l("Contact activated"),
    "contact.activation_sent": _l("Activation link sent"),
    "contact.approved": _l("Contact approved"),
    "contact.created": _l("Contact added"),
    "contact.deactivated": _l("Contact deactivated"),
    "contact.email_verified": _l("E-mail address confirmed"),
    "contact.erased": _l("Personal data erased"),
    "contact.erp_missing": _l("Contact no longer found in the ERP"),
    "contact.erp_reactivated": _l("Contact active again in the ERP"),
    "contact.erp_unreachable": _l("ERP not reachable at sign-in"),
    "contact.expired": _l("Login expired after a long absence"),
    "contact.joined_by_domain": _l("Contact joined through the e-mail domain"),
    "contact.password_changed": _l("Password changed"),
    "contact.password_reset_sent": _l("Password reset link sent"),
    "contact.password_set": _l("Password set"),
    "contact.rejected": _l("Contact rejected"),
    "contact.reverification_sent": _l("Link to verify the login again sent"),
    "contact.reverified": _l("Login verified again"),
    "contact.sign_in_attack_warned": _l("Warned of repeated sign-in attempts"),
    "contact.switched_account": _l("Switched to this account"),
    "contact.updated": _l("Contact changed"),
    "contact.verification_sent": _l("Confirmation e-mail sent"),
    "domain.claimed": _l("E-mail domain added"),
    "domain.join_mode_changed": _l("Joining through the e-mail domain changed"),
    "domain.removed": _l("E-mail domain removed"),
    "domain.verified": _l("E-mail domain verified"),
    "invoice.recorded": _l("Invoice recorded"),
    "legal_hold.lifted": _l("Legal hold lifted"),
    "legal_hold.set": _l("Legal hold set"),
    "oidc_client.registered": _l("Sign-in client registered"),
    "oidc_client.removed": _l("Sign-in client removed"),
    "oidc_client.secret_replaced": _l("Sign-in client secret replaced"),
    "order.accepted": _l("Order accepted"),
    "order.canceled": _l("Order canceled"),
    "order.placed": _l("Order placed"),
    "registration.approved": _l("Registration approved"),
    "registration.attempt_existing": _l("Registration tried with a known e-mail address"),
    "registration.instant": _l("Instant account opened"),
    "registration.instant_link_sent": _l("Instant account link sent"),
    "registration.rejected": _l("Registration rejected"),
    "registration.withdrawn": _l("Registration withdrawn"),
    "staff.deactivated": _l("Staff user deactivated"),
    "staff.invitation_accepted": _l("Invitation accepted"),
    "staff.invitation_sent": _l("Invitation sent"),
    "staff.invitation_skipped": _l("Invitation not sent"),
    "staff.invited": _l("Staff user invited"),
    "staff.password_changed": _l("Password changed"),
    "staff.reactivated": _l("Staff user reactivated"),
    "staff.recovery_code_used": _l("Recovery code used"),
    "staff.sign_in_attack_warned": _l("Warned of repeated sign-in attempts"),
    "staff.totp_disabled": _l("Two-step sign-in turned off"),
    "staff.totp_enabled": _l("Two-step sign-in turned on"),
    "staff.totp_reset": _l("Two-step sign-in removed"),
    "staff.updated": _l("Staff user changed"),
    "storefront.created": _l("Storefront created"),
    "storefront.policy_changed": _l("Storefront settings changed"),
    "subscription.recorded": _l("Subscription recorded"),
    "subscription.updated": _l("Subscription changed"),
    "webhook_delivery.replayed": _l("Webhook delivery sent again"),
    "webhook_endpoint.created": _l("Webhook endpoint created"),
    "webhook_endpoint.deleted": _l("Webhook endpoint deleted"),
    "webhook_endpoint.disabled": _l("Webhook endpoint disabled"),
    "webhook_endpoint.secret_rotated": _l("Webhook secret replaced"),
    "webhook_endpoint.updated": _l("Webhook endpoint changed"),
}

# the fields of every record whose changes a history keeps (accounts, addresses, invoices, contacts, staff users,
# orders, subscriptions, e-mail domains, storefronts), and the few names events use besides them
FIELDS: dict[str, Any] = {
    "account_id": _l("Account"),
    "account_number_prefix": _l("Account number prefix"),
    "active": _l("Active"),
    "allow_manual_password": _l("Staff may enter passwords"),
    "allow_reseller_registration": _l("Resellers may register"),
    "anonymous_access": _l("Anonymous access"),
    "auto_invoice_email": _l("E-mail invoices automatically"),
    "billing_day": _l("Billing day"),
    "city": _l("City"),
    "country": _l("Country"),
    "created_at": _l("Created"),
    "credit_limit": _l("Credit limit"),
    "currency": _l("Currency"),
    "customer_group": _l("Customer group"),
    "date_format": _l("Date format"),
    "decided_at": _l("Decided"),
    "decided_by_staff_id": _l("Decided by"),
    "default_auto_invoice_email": _l("Default: e-mail invoices automatically"),
    "default_billing_day": _l("Default billing day"),
    "default_currency": _l("Default currency"),
    "default_customer_group": _l("Default customer group"),
    "default_language": _l("Default language"),
    "default_partial_charges_invoicing": _l("Default invoicing of partial charges"),
    "deactivated_by_erp": _l("Deactivated by the ERP check"),
    "default_payment_method": _l("Default payment method"),
    "default_payment_terms": _l("Default payment terms"),
    "default_price_group": _l("Default price group"),
    "default_prorate_billing": _l("Default: prorate billing"),
    "default_rep_code": _l("Default rep code"),
    "disabled_reason": _l("Why disabled"),
    "domain": _l("E-mail domain"),
    "domain_join": _l("Joining through the e-mail domain"),
    "email": _l("E-mail"),
    "email_verified_at": _l("E-mail address confirmed"),
    "enabled": _l("Enabled"),
    "ends_on": _l("Ends on"),
    "erased_at": _l("Personal data erased"),
    "erp_cash_account_code": _l("ERP cash sales account"),
    "erp_checked_at": _l("Last checked in the ERP"),
    "erp_code": _l("ERP customer code"),
    "erp_contact_code": _l("ERP contact code"),
    "erp_excluded_account_codes": _l("ERP accounts without instant accounts"),
    "erp_stale_hours": _l("Hours before the ERP is asked again"),
    "erp_sync": _l("Sending to the ERP"),
    "erp_unreachable_policy": _l("When the ERP cannot be reached"),
    "first_name": _l("First name"),
    "inactivity_days": _l("Days of absence before a login expires"),
    "invoice_window_days": _l("Days of invoices shown"),
    "is_billing": _l("Billing address"),
    "is_shipping": _l("Shipping address"),
    "issued_on": _l("Issued on"),
    "kind": _l("Kind"),
    "label": _l("Label"),
    "language": _l("Preferred language"),
    "languages": _l("Languages offered"),
    "last_name": _l("Last name"),
    "last_seen_at": _l("Last seen"),
    "last_sign_in_at": _l("Last sign-in"),
    "legal_hold": _l("Legal hold"),
    "line1": _l("Street address"),
    "line2": _l("Address line 2"),
    "lines": _l("Lines"),
    "markup_override_percent": _l("Own markup (%)"),
    "markup_percent": _l("Markup (%)"),
    "may_become_reseller": _l("May become a reseller"),
    "monthly_amount": _l("Monthly amount"),
    "monthly_run_rate": _l("Monthly run rate"),
    "name": _l("Name"),
    "new_contact_for_existing_account": _l("New contacts for existing accounts"),
    "new_contact_requires_approval": _l("New contacts need approval"),
    "note": _l("Note"),
    "number": _l("Number"),
    "order": _l("Order"),
    "order_approval_required": _l("Orders need approval"),
    "parent_reseller_id": _l("Reseller"),
    "partial_charges_invoicing": _l("Invoicing of partial charges"),
    "password": _l("Password"),
    "password_hash": _l("Password"),
    "password_max_length": _l("Longest password"),
    "password_min_length": _l("Shortest password"),
    "password_reject_common": _l("Refuse common passwords"),
    "password_require_character_classes": _l("Passwords need a capital letter, a number and a special character"),
    "payment_method": _l("Payment method"),
    "payment_terms": _l("Payment terms"),
    "phone": _l("Phone"),
    "phone_as_given": _l("Phone as the ERP gave it"),
    "placed_by": _l("Placed by"),
    "placed_by_contact_id": _l("Placed by contact"),
    "placed_by_staff_id": _l("Placed by staff user"),
    "postcode": _l("Postcode"),
    "preferred_language": _l("Preferred language"),
    "price_group": _l("Price group"),
    "prorate_billing": _l("Prorate billing"),
    "quantity": _l("Quantity"),
    "region": _l("State or province"),
    "registration_mode": _l("Registration mode"),
    "rep_code": _l("Rep code"),
    "reseller_account_id": _l("Reseller"),
    "role": _l("Role"),
    "search_text": _l("Search text"),
    "self_registration": _l("Self-registration"),
    "sign_in_after_registration": _l("Signed in after registering"),
    "sign_in_text": _l("Text on the sign-in form"),
    "sign_in_text_translations": _l("Text on the sign-in form in other languages"),
    "sku": _l("SKU"),
    "slug": _l("Address name"),
    "staff_notification_bcc": _l("Staff notifications: Bcc"),
    "staff_notification_cc": _l("Staff notifications: Cc"),
    "staff_notification_to": _l("Staff notifications: To"),
    "starts_on": _l("Starts on"),
    "status": _l("Status"),
    "storefront_id": _l("Storefront"),
    "total": _l("Total"),
    "total_amount": _l("Total amount"),
    "total_cost": _l("Total cost"),
    "totp_enabled_at": _l("Two-step sign-in turned on"),
    "totp_last_step": _l("Last two-step code"),
    "totp_secret": _l("Two-step sign-in secret"),
    "updated_at": _l("Changed"),
    "verification_required_before_ordering": _l("E-mail confirmed before ordering"),
    "verification_token": _l("Verification record"),
    "verified_at": _l("Verified"),
    "verified_by": _l("Verified by"),
}
# a group of fields recorded under one name ("billing_address.city"): the group's words come first
GROUPS: dict[str, Any] = {"billing_address": _l("Billing address"), "first_contact": _l("First contact"),
                          "attributes": _l("Custom attribute")}

# Every status a record has (accounts, contacts, orders, subscriptions, staff users, imports, ERP sends, webhook
# deliveries), in words: the one source of the words, for a history and for every badge, list and export
# (`status_label`)
STATUSES: dict[str, Any] = {
    "active": _l("active"), "inactive": _l("inactive"), "pending_approval": _l("pending approval"),
    "rejected": _l("rejected"), "invited": _l("invited"), "expired": _l("expired"), "deactivated": _l("deactivated"),
    "in_progress": _l("in progress"), "executed": _l("executed"), "canceled": _l("canceled"),
    "suspended": _l("suspended"),
    # imports
    "uploaded": _l("previewed"), "dry_run": _l("dry run"), "imported": _l("imported"), "refused": _l("refused"),
    "cancelled": _l("canceled"),
    # sending to the ERP (outbox) and webhook deliveries
    "pending": _l("waiting"), "sending": _l("sending"), "sent": _l("sent"), "failed": _l("failed"),
    "delivered": _l("delivered"),
}
_LANGUAGE_NAMES = dict(LANGUAGES)
# values named in words, by the field they are a value of
VALUES: dict[str, Mapping[str, Any]] = {
    "status": STATUSES,
    "kind": {"b2b": _l("Company (B2B)"), "b2c": _l("Private person (B2C)"), "reseller": _l("Reseller"),
             "confidential": _l("Confidential (with a secret)"), "public": _l("Public (no secret)"),
             "subscription": _l("Subscription"), "asset": _l("Asset")},
    "role": {"buyer": _l("Buyer"), "account_admin": _l("Account administrator"), "admin": _l("Administrator"),
             "csr": _l("Customer service"), "approver": _l("Approver"), "reseller_admin": _l("Reseller administrator")},
    "payment_method": {"cash": _l("Cash"), "deposit": _l("Deposit"), "credit_card": _l("Credit card"),
                       "invoice": _l("Invoice")},
    "language": _LANGUAGE_NAMES, "preferred_language": _LANGUAGE_NAMES, "default_language": _LANGUAGE_NAMES,
    "languages": _LANGUAGE_NAMES,
    "partial_charges_invoicing": {"next_invoice": _l("On the next invoice"), "immediately": _l("Invoice immediately")},
    "placed_by": {"customer": _l("Customer"), "reseller": _l("Reseller")},
    "disabled_reason": {"by_staff": _l("by staff"),
                        "failing": _l("every delivery failed for longer than allowed")},
}
# codes named by a function of the current language: countries (DE: Deutschland) and their states (DE-BE: Berlin)
NAMED_CODES: dict[str, Any] = {"country": country_name, "region": subdivision_name}
# who acted, when it was the system rather than a person (an e-mail address or a name is shown as it is)
ACTORS: dict[str, Any] = {"system": _l("System"), "ERP check at sign-in": _l("ERP check at sign-in"),
                          "inactivity check at sign-in": _l("Inactivity check at sign-in"),
                          "merchant staff": _l("Merchant staff"), "erased contact": _l("Erased contact")}


def _humanised(name: str) -> str:
    return name.replace(".", " ").replace("_", " ").capitalize()


def action_label(action: str) -> str:
    """The event in words ("Account created"); an event not named above reads as its words."""
    label = ACTIONS.get(action)
    return translate(label) if label is not None else _humanised(action)


def field_label(name: str, extra: Mapping[str, Any] | None = None) -> str:
    """A changed field in words; `extra` names fields only the page knows (custom attributes by their label)."""
    if extra and name in extra:
        return translate(extra[name])
    if name in FIELDS:
        return translate(FIELDS[name])
    group, dot, rest = name.partition(".")
    if dot and group in GROUPS:
        return f"{translate(GROUPS[group])}: {field_label(rest)}"
    return _humanised(name)


def value_text(name: str, value: Any, names: Mapping[str, Mapping[Any, Any]] | None = None) -> str:
    """A recorded value as people read it: nothing as a dash, yes/no, lists joined, known codes in words, and ids the
    page can name (`names`: {"storefront_id": {3: "Main shop"}})."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool) or (name.startswith("attributes.") and value in ("true", "false")):
        return translate(_l("yes")) if value in (True, "true") else translate(_l("no"))
    if isinstance(value, list):
        return ", ".join(value_text(name, item, names) for item in value)
    if isinstance(value, dict):  # texts by language: {"fr": "…"}
        return "; ".join(f"{_LANGUAGE_NAMES.get(key, key)}: {value_text(name, item, names)}"
                         for key, item in value.items()) or NOTHING
    field = name.rpartition(".")[2]
    known = (names or {}).get(field, {}).get(value) or VALUES.get(field, {}).get(str(value))
    if known is not None:
        return translate(known)
    return NAMED_CODES[field](str(value)) if field in NAMED_CODES else str(value)


def status_label(status: Any) -> str:
    """A status in words in the reader's language ("pending_approval": "en attente d'approbation"); an unknown one
    as it is."""
    return value_text("status", status)


def actor_text(label: str, actor_type: str) -> str:
    wanted = label or actor_type
    return translate(ACTORS[wanted]) if wanted in ACTORS else wanted


def install(env: Any) -> None:
    """Give a Jinja environment the history's words: history_action, history_field, history_value, history_actor,
    and status_label for every status shown."""
    env.globals.update(history_action=action_label, history_field=field_label, history_value=value_text,
                       history_actor=actor_text, status_label=status_label)
