"""The console's account record (issue 11, part 2): the account's orders, each login's cart and favourites, "copy
into cart", the storefront selector, a new contact's language, the creation's history entry, history in words in the
staff user's language, and confirmations before actions that e-mail a customer or cannot be undone."""

from __future__ import annotations

import html
import re
from decimal import Decimal

from sqlalchemy import select, update

from accountdesk.accounts.models import Account
from accountdesk.carts.models import Cart, CartLine, Favourite
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.models import AuditEvent
from accountdesk.orders import service as orders
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.reseller_world import NEW_USER, customer, world
from tests.test_console_pages import post, sign_in
from tests.test_registration_api import body, url

LINES = [{"sku": "PAPER-A4", "name": "Paper A4", "quantity": 5, "unit_cost": Decimal("4.20")},
         {"sku": "TONER-K", "name": "Black toner", "quantity": 1, "unit_cost": None}]


def _cart_and_favourite(db, contact: Contact, sku: str) -> None:
    with db.transaction() as session:
        session.add(Cart(contact_id=contact.id, lines=[CartLine(sku=sku, name=f"{sku} name", quantity=2,
                                                                unit_price=Decimal("3.50"))]))
        session.add(Favourite(contact_id=contact.id, sku=f"FAV-{sku}", name=f"Favourite {sku}"))


def _cart_lines(db, contact: Contact) -> dict[str, tuple[int, Decimal]]:
    with db.transaction() as session:
        cart = session.scalar(select(Cart).where(Cart.contact_id == contact.id))
        return {line.sku: (line.quantity, line.unit_price) for line in cart.lines} if cart else {}


def test_the_record_shows_the_accounts_orders_carts_and_favourites_and_no_one_elses(db, client):
    store = f.storefront(db)
    mine, other = f.account(db, name="Mine Ltd", storefront_id=store.id), f.account(db, name="Other Ltd")
    buyer, stranger = f.contact(db, mine, store, first_name="Bea"), f.contact(db, other, store)
    own_order = f.order(db, mine, LINES)
    their_order = f.order(db, other, [{"sku": "THEIR-SKU", "name": "Theirs", "quantity": 1, "unit_cost": None}])
    _cart_and_favourite(db, buyer, "MINE-CART")
    _cart_and_favourite(db, stranger, "THEIR-CART")
    sign_in(client, f.staff(db, "csr"))
    record = client.get(f"/console/accounts/{mine.id}").text
    assert own_order.number in record and their_order.number not in record
    assert "MINE-CART" in record and "Favourite MINE-CART" in record and "Cart total: €7.00" in record
    assert "THEIR-CART" not in record and "THEIR-SKU" not in record
    order_page = client.get(f"/console/accounts/{mine.id}/orders/{own_order.id}")
    assert order_page.status_code == 200 and "PAPER-A4" in order_page.text and "to be priced" in order_page.text
    assert client.get(f"/console/accounts/{mine.id}/orders/{their_order.id}").status_code == 404


def test_a_reseller_sees_only_its_own_customers_orders_and_carts(db, client):
    a, b = world(db), world(db)
    ours, theirs = customer(db, a, name="Ours Ltd"), customer(db, b, name="Theirs Ltd")
    our_order, their_order = f.order(db, ours), f.order(db, theirs)
    _cart_and_favourite(db, f.contact(db, theirs, b.storefront), "THEIR-CART")
    sign_in(client, a.staff)
    assert our_order.number in client.get(f"/console/accounts/{ours.id}").text
    for path in (f"/console/accounts/{theirs.id}", f"/console/accounts/{theirs.id}/orders/{their_order.id}",
                 f"/console/accounts/{ours.id}/orders/{their_order.id}"):
        answer = client.get(path)
        assert answer.status_code == 404 and their_order.number not in answer.text and "THEIR-CART" not in answer.text


def test_copy_into_cart_adds_the_order_lines_to_the_chosen_logins_cart(db, client):
    store = f.storefront(db)
    account, other = f.account(db, storefront_id=store.id, markup_override_percent=Decimal("10")), f.account(db)
    buyer, colleague = f.contact(db, account, store), f.contact(db, account, store)
    stranger = f.contact(db, other, store)
    with db.transaction() as session:
        session.add(Cart(contact_id=buyer.id, lines=[CartLine(sku="PAPER-A4", name="Paper", quantity=1,
                                                              unit_price=Decimal("1"))]))
    order = f.order(db, account, LINES)
    sign_in(client, f.staff(db, "csr"))
    copy = f"/console/accounts/{account.id}/orders/{order.id}/copy-to-cart"
    for chosen in (str(stranger.id), "", "x"):
        refused = post(client, copy, {"contact_id": chosen})
        assert refused.status_code == 422 and "Choose a login of this customer." in refused.text, chosen
    assert _cart_lines(db, stranger) == {}
    copied = post(client, copy, {"contact_id": str(buyer.id)})
    assert copied.status_code == 303 and copied.headers["location"].endswith("#carts")
    assert f"The lines of order {order.number} are in the cart of {buyer.name}." in client.get(
        copied.headers["location"]).text
    # a product already there gets the quantity added; the price is the customer's (cost + 10 % markup)
    assert _cart_lines(db, buyer) == {"PAPER-A4": (6, Decimal("4.6200")), "TONER-K": (1, Decimal("0"))}
    assert _cart_lines(db, colleague) == {}
    with db.transaction() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "cart.order_copied")).one()
        assert (event.account_id, event.subject_id, event.changes) == (account.id, buyer.id,
                                                                       {"order": order.number, "lines": 2})


def test_the_storefront_selector_takes_only_existing_storefronts_and_a_change_is_in_the_history(db, client):
    first, second = f.storefront(db, name="First Shop"), f.storefront(db, name="Second Shop")
    account = f.account(db, name="Moving Ltd", storefront_id=first.id)
    sign_in(client, f.staff(db, "csr"))
    record_url = f"/console/accounts/{account.id}"
    record = client.get(record_url).text
    assert re.search(rf'<option value="{first.id}" selected>First Shop</option>', record) and "Second Shop" in record
    details = {"name": "Moving Ltd", "preferred_language": "en", "payment_method": "cash", "currency": "EUR",
               "billing_day": "1"}
    for unknown in ("999999999", "abc"):
        refused = post(client, record_url, {**details, "storefront_id": unknown})
        assert refused.status_code == 422 and 'id="details-storefront-id-error"' in refused.text, unknown
    created = post(client, "/console/accounts/new", {"account": "new", "company_name": "Nowhere Ltd",
                                                     "storefront_id": "999999999", "first_name": "Nora",
                                                     "last_name": "Where", "email": "nora@nowhere.example",
                                                     "phone": "+44 113 496 0000", "language": "en", "active": "on"})
    assert created.status_code == 422
    assert post(client, record_url, {**details, "storefront_id": str(second.id)}).status_code == 303
    with db.transaction() as session:
        assert session.get(Account, account.id).storefront_id == second.id
        assert session.scalar(select(Account).where(Account.name == "Nowhere Ltd")) is None
    history = client.get(record_url).text
    assert re.search(r'<span class="field">Storefront</span>:\s*<span class="old">First Shop</span> → '
                     r'<span class="new">Second Shop</span>', history)


def test_a_new_contacts_language_defaults_to_the_accounts_in_console_api_and_reseller_forms(db, client):
    store = f.storefront(db, default_language="fr")
    account = f.account(db, storefront_id=store.id, preferred_language="de")
    staff = f.staff(db, "csr")
    sign_in(client, staff)
    form = client.get(f"/console/accounts/{account.id}").text
    assert re.search(r'<option value="de" selected>Deutsch</option>', form.split('data-testid="contact-form"')[1])
    person = {"first_name": "Karl", "last_name": "Ohne", "email": "karl@example.com", "phone": "+4930901820"}
    assert post(client, f"/console/accounts/{account.id}/contacts", person).status_code == 303
    api = client.post(f"/api/v1/accounts/{account.id}/contacts", headers=f.token(client, staff),
                      json={**person, "email": "karla@example.com"})
    assert api.status_code == 201 and api.json()["language"] == "de"
    w = world(db, client)
    french = customer(db, w, preferred_language="fr")
    users = f"{w.base}/customers/{french.id}/users"
    added = client.post(users, headers=w.headers, json={k: v for k, v in NEW_USER.items() if k != "language"})
    assert added.status_code == 201 and added.json()["language"] == "fr"
    sign_in(client, w.staff)
    record = client.get(f"/console/resellers/{w.reseller.id}/customers/{french.id}").text
    assert re.search(r'<option value="fr" selected>Français</option>', record.split('data-testid="user-form"')[1])
    with db.transaction() as session:
        assert session.scalar(select(Contact.language).where(Contact.email == "karl@example.com")) == "de"


def test_the_creation_entry_holds_the_address_the_attributes_and_the_first_contact(db, client):
    store = f.storefront(db, registration_mode="approval")
    assert client.post(url(store), json=body()).status_code == 202
    with db.transaction() as session:
        account = session.scalar(select(Account).where(Account.name == "Acme Widgets Ltd"))
        [created] = session.scalars(select(AuditEvent).where(AuditEvent.account_id == account.id,
                                                             AuditEvent.action == "account.created")).all()
    assert created.changes["billing_address.line1"] == [None, "1 Main Street"]
    assert created.changes["billing_address.city"] == [None, "Springfield"]
    assert created.changes["first_contact.email"] == [None, "ada@example.com"]
    assert created.changes["first_contact.first_name"] == [None, "Ada"]
    assert created.changes["first_contact.password_hash"] == [None, "•••"]
    sign_in(client, f.staff(db, "admin"))
    history = client.get(f"/console/accounts/{account.id}").text
    assert "First contact: E-mail" in history and "Billing address: Street address" in history
    # a contact added later is not part of the creation
    later = post(client, f"/console/accounts/{account.id}/contacts", {
        "first_name": "Late", "last_name": "Comer", "email": "late@example.com", "phone": "+12175550100"})
    assert later.status_code == 303
    with db.transaction() as session:
        assert session.get(AuditEvent, created.id).changes == created.changes


def test_history_reads_in_words_in_a_french_staff_users_language(db, client):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    contact = f.contact(db, account, store)
    staff = f.staff(db, "admin")
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == staff.id).values(language="fr"))
        session.add(AuditEvent(actor_type="system", actor_label="ERP check at sign-in", subject_type="contact",
                               subject_id=contact.id, account_id=account.id, action="contact.erp_missing",
                               changes={"status": ["active", "deactivated"]}))
    sign_in(client, staff)
    assert post(client, f"/console/accounts/{account.id}/contacts/{contact.id}",
                {"language": "de", "date_format": "YYYY-MM-DD"}).status_code == 303
    history = html.unescape(client.get(f"/console/accounts/{account.id}").text.split('<section id="history"')[1])
    for words in ("Langue préférée", "Format de date", "Contact modifié", "Compte créé",
                  "Contact introuvable dans l'ERP", "Contrôle ERP à la connexion", "désactivé", "Deutsch"):
        assert words in history, words
    for raw in ("preferred_language", "date_format", "contact.updated", "Contact erp missing", "erp_missing",
                "account.created", "ERP check at sign-in"):
        assert raw not in history, raw


def test_an_approval_or_an_erasure_without_its_confirmation_does_nothing(db, client, mail_dir):
    store = f.storefront(db, registration_mode="approval")
    assert client.post(url(store), json=body()).status_code == 202
    with db.transaction() as session:
        waiting = session.scalar(select(Account).where(Account.name == "Acme Widgets Ltd"))
    sign_in(client, f.staff(db, "admin"))
    asked = post(client, f"/console/approvals/{waiting.id}/approve")
    assert asked.status_code == 200 and 'role="alertdialog"' in asked.text and "Approve Acme Widgets Ltd?" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    reject = post(client, f"/console/approvals/{waiting.id}/reject", {"reason": "Not a pharmacy."})
    assert reject.status_code == 200 and 'name="reason" value="Not a pharmacy."' in reject.text  # carried to "Yes"
    with db.transaction() as session:
        assert session.get(Account, waiting.id).status == "pending_approval"
        assert not session.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ["registration.approved", "registration.rejected"]))).all()
    assert post(client, f"/console/approvals/{waiting.id}/approve", {"confirmed": "yes"}).status_code == 303
    with db.transaction() as session:
        assert session.get(Account, waiting.id).status == "active"
        registrant = session.scalar(select(Contact).where(Contact.account_id == waiting.id))
    erase = f"/console/accounts/{waiting.id}/contacts/{registrant.id}/erase"
    asked = post(client, erase, {"reason": "Asked by phone"})
    assert asked.status_code == 200 and "Yes, erase for good" in asked.text
    with db.transaction() as session:
        assert session.get(Contact, registrant.id).erased_at is None
    assert post(client, erase, {"reason": "Asked by phone", "confirmed": "yes"}).status_code == 303
    with db.transaction() as session:
        assert session.get(Contact, registrant.id).erased_at is not None


def test_cancelling_an_order_reads_cancel_order_next_to_keep_the_order(db, client):
    w = world(db, payment_method="credit_card")
    buyer = customer(db, w)
    contact = f.contact(db, buyer, w.storefront)
    with db.transaction() as session:
        order = orders.place_order(session, Actor.system(), session.get(Account, buyer.id),
                                   session.get(Account, w.reseller.id), [LINES[0]], may_price=True,
                                   contact=session.get(Contact, contact.id))
    sign_in(client, w.staff)
    record = f"/console/resellers/{w.reseller.id}/customers/{buyer.id}"
    menu = client.get(record).text
    assert ">Cancel order</a>" in menu
    confirm = client.get(record, params={"confirm": f"order:{order.id}:cancel"}).text
    question = confirm.split('data-testid="confirm"')[1].split("</div>")[0]
    assert ">Cancel order</button>" in question and ">Keep the order</a>" in question
    assert len(re.findall(r">\s*Cancel\s*<", question)) == 0  # never a bare "Cancel" beside "Cancel order"
    unconfirmed = post(client, f"/console/resellers/{w.reseller.id}/orders/{order.id}/cancel")
    assert unconfirmed.status_code == 200 and ">Keep the order</a>" in unconfirmed.text
    with db.transaction() as session:
        assert session.get(type(order), order.id).status == "pending_approval"
