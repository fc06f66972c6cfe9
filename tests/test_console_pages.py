"""Console pages over real HTTP (TestClient): sign-in, CSRF, roles, reseller scope, forms that keep what was typed."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from accountdesk.accounts.models import Account, CustomAttributeDefinition
from accountdesk.contacts.models import Contact
from accountdesk.contacts.service import ACTIVATION, RESET
from accountdesk.core import tokens
from accountdesk.core.models import AuditEvent
from tests import factories as f
from tests.mailbox import deliver_and_read, links

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ADDRESS = {"billing_address.line1": "1 Main Street", "billing_address.city": "Springfield",
           "billing_address.country": "US", "billing_address.region": "US-IL", "billing_address.postcode": "62701"}
# "Create customer": the person who signs in for the new account (tests/test_new_customer.py has the dialog's own)
PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.example", "phone": "+12175550142",
          "account": "new", "active": "on"}


def record_of(welcome: str) -> str:
    """The new account's record page, from the address "Create customer" sends to next."""
    return re.match(r"/console/accounts/\d+", welcome).group(0)


def csrf(client) -> str:
    return CSRF.search(client.get("/console/sign-in").text).group(1)


def sign_in(client, user) -> str:
    response = client.post("/console/sign-in", data={"csrf_token": csrf(client), "email": user.email,
                                                     "password": f.PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client.cookies["accountdesk_console"]


def post(client, url: str, data: dict[str, str] | None = None, **kwargs):
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})}, follow_redirects=False, **kwargs)


def count(db, model, *where) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def error_beside(html: str, field_id: str) -> str:
    found = re.search(rf'id="{field_id}-error">([^<]+)<', html)
    return found.group(1) if found else ""


def test_sign_in_wrong_right_next_and_sign_out(db, client):
    user = f.staff(db, "csr")
    first = client.get("/console/accounts?q=ada", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/console/sign-in?next=%2Fconsole%2Faccounts%3Fq%3Dada"
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/accounts"
    for email, password in ((user.email, "wrong-password-123"), ("nobody@example.com", f.PASSWORD)):
        wrong = post(client, "/console/sign-in", {"email": email, "password": password})
        assert wrong.status_code == 400 and "E-mail or password is not right." in wrong.text
        assert "accountdesk_console" not in wrong.headers.get("set-cookie", "")
    right = post(client, "/console/sign-in", {"email": user.email.upper(), "password": f.PASSWORD,
                                              "next": "/console/accounts?q=ada"})
    assert right.status_code == 303 and right.headers["location"] == "/console/accounts?q=ada"
    cookie = right.headers["set-cookie"]
    assert "accountdesk_console=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "Path=/;" in cookie and "Secure" not in cookie
    old = client.cookies["accountdesk_console"]
    assert client.get("/console/accounts").status_code == 200
    for evil in ("https://evil.example/", "//evil.example/console", "/api/v1/accounts"):
        again = post(client, "/console/sign-in", {"email": user.email, "password": f.PASSWORD, "next": evil})
        assert again.headers["location"] == "/console/accounts", evil
    assert client.cookies["accountdesk_console"] != old  # a new session id at every sign-in
    current = client.cookies["accountdesk_console"]
    assert post(client, "/console/sign-out").headers["location"] == "/console/sign-in"
    assert "You are signed out." in client.get("/console/sign-in").text
    client.cookies.set("accountdesk_console", current, path="/console")
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303  # revoked, not only forgotten
    client.cookies.set("accountdesk_console", old, path="/console")
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303  # ended by the next sign-in


def test_sign_in_is_rate_limited_per_email(db, client):
    user = f.staff(db, "csr")
    for _ in range(10):
        wrong = post(client, "/console/sign-in", {"email": user.email, "password": "not-the-password"})
        assert wrong.status_code == 400
    blocked = post(client, "/console/sign-in", {"email": user.email, "password": f.PASSWORD})
    assert blocked.status_code == 429 and "Too many attempts to sign in" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0 and "accountdesk_console" not in client.cookies


def test_missing_csrf_is_refused_and_changes_nothing(db, client):
    account = f.account(db)
    sign_in(client, f.staff(db, "csr"))
    toggled = client.post(f"/console/accounts/{account.id}/status", data={"active": "false"}, follow_redirects=False)
    assert toggled.status_code == 403 and "The form expired or came from another site" in toggled.text
    created = client.post("/console/accounts/new", data={"name": "Forged Ltd", **ADDRESS}, follow_redirects=False)
    assert created.status_code == 403
    forged = client.post("/console/accounts/new", data={"csrf_token": "x" * 64, "name": "Forged Ltd", **ADDRESS})
    assert forged.status_code == 403
    assert count(db, Account) == 1 and count(db, Account, Account.status == "active") == 1
    assert count(db, AuditEvent, AuditEvent.account_id == account.id) == 1  # only "created"


def test_search_filters_sort_and_pages(db, client):
    for n in range(26):
        f.account(db, name=f"Bulk {n:02d}", customer_group="retail" if n % 2 else "", kind="b2c" if n == 7 else "b2b")
    f.account(db, name="Sleeping Ltd", status="inactive")
    sign_in(client, f.staff(db, "csr"))
    first = client.get("/console/accounts", params={"q": "bulk"}).text
    assert "1–25 of 26 customers" in first and "Bulk 00" in first and "Bulk 25" not in first
    assert 'href="/console/accounts?q=bulk&amp;sort=name&amp;page=2"' in first and 'rel="prev"' not in first
    second = client.get("/console/accounts", params={"q": "bulk", "page": 2}).text
    assert "26–26 of 26" in second and "Bulk 25" in second and 'rel="next"' not in second
    newest = client.get("/console/accounts", params={"q": "bulk", "sort": "-created_at"}).text
    assert newest.index("Bulk 25") < newest.index("Bulk 24")
    assert "13 customers" in client.get("/console/accounts", params={"customer_group": "retail"}).text
    b2c = client.get("/console/accounts", params={"kind": "b2c"}).text
    assert "Bulk 07" in b2c and "Bulk 08" not in b2c
    inactive = client.get("/console/accounts", params={"status": "inactive"}).text
    assert "Sleeping Ltd" in inactive and "Bulk" not in inactive and 'class="badge inactive"' in inactive
    assert "No customer matches." in client.get("/console/accounts", params={"q": "zzz"}).text
    assert client.get("/console/accounts", params={"page": "x"}).status_code == 400


def test_create_with_missing_fields_shows_messages_and_creates_nothing(db, client):
    f.storefront(db)
    sign_in(client, f.staff(db, "csr"))
    form = client.get("/console/accounts/new?name=Acme").text
    assert 'value="Acme"' in form and form.count('class="req"') >= 5  # mandatory fields carry the red asterisk
    refused = post(client, "/console/accounts/new", {"first_name": "", "email": "not-an-email", "phone": "12",
                                                      "billing_address.line1": "5 Elm Road", "active": "on"})
    assert refused.status_code == 422
    html = refused.text
    for field_id in ("new-first-name", "new-last-name", "new-billing-address-city", "new-billing-address-country"):
        assert error_beside(html, field_id) == "This field is required.", field_id
    assert "valid e-mail address" in error_beside(html, "new-email")
    assert 'value="5 Elm Road"' in html and 'value="not-an-email"' in html  # what was typed stays
    assert count(db, Account) == 0
    bad_phone = post(client, "/console/accounts/new", {**PERSON, "company_name": "Acme", "phone": "12", **ADDRESS})
    assert bad_phone.status_code == 422 and error_beside(bad_phone.text, "new-phone")
    bad_postcode = post(client, "/console/accounts/new", {**PERSON, "company_name": "Acme", **ADDRESS,
                                                          "billing_address.postcode": "X"})
    assert bad_postcode.status_code == 422 and "postcode does not look right" in bad_postcode.text
    assert count(db, Account) == 0
    created = post(client, "/console/accounts/new", {**PERSON, "company_name": "Acme Tools",
                                                     "email": "Sales@Acme.example", "phone": "(217) 555-0142",
                                                     **ADDRESS})
    assert created.status_code == 303
    assert "Customer W" in client.get(created.headers["location"]).text
    record = client.get(record_of(created.headers["location"]))
    assert "Acme Tools" in record.text and "+12175550142" in record.text and "Customer W" not in record.text
    assert "Account created" in record.text and 'data-testid="account-status">active<' in record.text
    listed = client.get("/console/accounts", params={"q": "springf"}).text
    assert "Acme Tools" in listed and "sales@acme.example" in listed


def test_approver_may_look_but_not_create(db, client):
    account = f.account(db, name="Looked At Ltd")
    sign_in(client, f.staff(db, "approver"))
    listing = client.get("/console/accounts")
    assert listing.status_code == 200 and "Looked At Ltd" in listing.text and "Create customer" not in listing.text
    denied = client.get("/console/accounts/new")
    assert denied.status_code == 403 and "Your role (approver) may not do this." in denied.text
    assert post(client, "/console/accounts/new", {"name": "Sneaky", **ADDRESS}).status_code == 403
    assert post(client, f"/console/accounts/{account.id}/status", {"active": "false"}).status_code == 403
    assert count(db, Account) == 1 and count(db, Account, Account.status == "active") == 1
    record = client.get(f"/console/accounts/{account.id}").text
    assert ">Update<" not in record and "Deactivate account" not in record and "disabled" in record


def test_reseller_staff_see_only_their_customers(db, client):
    store = f.storefront(db)
    reseller = f.account(db, kind="reseller", name="Reseller Co")
    mine = f.account(db, name="Mine Customer", parent_reseller_id=reseller.id, storefront_id=store.id)
    other = f.account(db, name="Other Customer", storefront_id=store.id)
    theirs = f.contact(db, other, store)
    sign_in(client, f.staff(db, "reseller_admin", reseller_account_id=reseller.id))
    listing = client.get("/console/accounts").text
    assert "Mine Customer" in listing and "Other Customer" not in listing
    assert client.get(f"/console/accounts/{mine.id}").status_code == 200
    for url in (f"/console/accounts/{other.id}", f"/console/accounts/{other.id}/contacts/{theirs.id}",
                f"/console/accounts/{other.id}/contacts/{theirs.id}/reset"):
        missing = client.get(url)
        assert missing.status_code == 404 and "No such account." in missing.text, url
    assert post(client, f"/console/accounts/{other.id}/status", {"active": "false", "confirmed": "yes"}
                ).status_code == 404
    assert post(client, f"/console/accounts/{other.id}/contacts/{theirs.id}/reset", {"confirmed": "yes"}
                ).status_code == 404
    assert count(db, Account, Account.status == "inactive") == 0
    new = client.get("/console/accounts/new").text
    assert 'value="reseller"' not in new  # reseller staff cannot create resellers
    f.storefront(db, reseller_account_id=reseller.id)
    created = post(client, "/console/accounts/new", {**PERSON, "company_name": "Their New Customer", **ADDRESS})
    assert created.status_code == 303
    with db.transaction() as session:
        parent = select(Account.parent_reseller_id).where(Account.name == "Their New Customer")
        assert session.scalar(parent) == reseller.id


def test_record_page_details_attributes_addresses_and_active_toggle(db, client):
    with db.transaction() as session:
        session.add_all([CustomAttributeDefinition(key="seats", label="Seats", type="number"),
                         CustomAttributeDefinition(key="contract", label="Contract", type="text", required=True),
                         CustomAttributeDefinition(key="vip", label="VIP", type="boolean"),
                         CustomAttributeDefinition(key="tier", label="Tier", type="choice",
                                                   choices=["gold", "silver"])])
    f.storefront(db)
    sign_in(client, f.staff(db, "admin"))
    form = {**PERSON, "company_name": "Attr Co", "attributes.seats": "ten", "attributes.tier": "gold", **ADDRESS}
    refused = post(client, "/console/accounts/new", form)
    assert refused.status_code == 422 and error_beside(refused.text, "new-attributes-seats") == "Enter a number."
    assert error_beside(refused.text, "new-attributes-contract") == "Contract is required."
    assert count(db, Account) == 0
    form |= {"attributes.seats": "10", "attributes.contract": "C-7"}
    url = record_of(post(client, "/console/accounts/new", form).headers["location"])
    record = client.get(url).text
    assert 'name="attributes.seats" type="text" value="10"' in record and "selected>gold<" in record
    details = {"name": "Attr Company", "kind": "b2b", "email": "", "phone": "", "preferred_language": "fr",
               "customer_group": "wholesale", "price_group": "", "rep_code": "", "payment_method": "invoice",
               "payment_terms": "30 days", "currency": "EUR", "billing_day": "40",
               "auto_invoice_email": "on", "attributes.seats": "12", "attributes.vip": "on", "attributes.tier": "",
               "attributes.contract": "C-7"}
    bad = post(client, url, details)
    assert bad.status_code == 422 and error_beside(bad.text, "details-billing-day")
    assert 'value="Attr Company"' in bad.text and 'value="30 days"' in bad.text
    assert post(client, url, {**details, "billing_day": "15"}).status_code == 303
    record = client.get(url).text
    assert "Changes saved." in record and 'value="Attr Company"' in record and 'value="wholesale"' in record
    assert re.search(r'<span class="field">Name</span>:\s*<span class="old">Attr Co</span> → '
                     r'<span class="new">Attr Company', record)
    assert re.search(r'<span class="field">Seats</span>:\s*<span class="old">10</span> → <span class="new">12', record)
    unchanged = post(client, url, {**details, "billing_day": "15"})
    assert "Nothing changed." in client.get(unchanged.headers["location"]).text

    missing_city = post(client, f"{url}/addresses", {"line1": "9 Dock Road", "country": "GB", "label": "Warehouse"})
    assert missing_city.status_code == 422 and error_beside(missing_city.text, "address-new-city")
    assert 'value="9 Dock Road"' in missing_city.text
    warehouse = {"line1": "9 Dock Road", "city": "London", "country": "GB", "postcode": "sw1a 1aa",
                 "label": "Warehouse", "is_shipping": "on"}
    assert post(client, f"{url}/addresses", warehouse).status_code == 303
    with db.transaction() as session:
        account = session.scalar(select(Account).where(Account.name == "Attr Company"))
        warehouse = next(a for a in account.addresses if a.label == "Warehouse")
    assert warehouse.postcode == "SW1A 1AA" and warehouse.is_shipping
    edit = f"{url}/addresses/{warehouse.id}"
    assert post(client, edit, {"line1": "", "city": "London", "country": "GB"}).status_code == 422
    assert post(client, edit, {"line1": "10 Dock Road", "city": "London", "country": "GB", "postcode": "SW1A 1AA",
                               "label": "Warehouse"}).status_code == 303
    assert "10 Dock Road" in client.get(url).text
    asked = post(client, f"{edit}/delete")
    assert asked.status_code == 200 and "Delete this address?" in asked.text and "10 Dock Road" in client.get(url).text
    assert post(client, f"{edit}/delete", {"confirmed": "yes"}).status_code == 303
    assert f'data-testid="address-{warehouse.id}"' not in client.get(url).text

    asked = post(client, f"{url}/status", {"active": "false"})
    assert asked.status_code == 200 and "Deactivate this account?" in asked.text
    assert 'data-testid="account-status">active<' in client.get(url).text  # nothing happens until "Yes"
    assert post(client, f"{url}/status", {"active": "false", "confirmed": "yes"}).status_code == 303
    off = client.get(url).text
    assert "Account deactivated." in off and "Activate account" in off
    assert 'data-testid="account-status">inactive<' in off
    assert post(client, f"{url}/status", {"active": "maybe"}).status_code == 400
    assert post(client, f"{url}/status", {"active": "true"}).status_code == 303
    history = client.get(url).text
    assert history.index("Account activated") < history.index("Account deactivated") < history.index("Address deleted")


def test_contacts_add_edit_reset_link_and_manual_password(db, client, mail_dir, settings):
    store = f.storefront(db, allow_manual_password=False)
    account = f.account(db, storefront_id=store.id)
    sign_in(client, f.staff(db, "csr"))
    url = f"/console/accounts/{account.id}"
    missing = post(client, f"{url}/contacts", {"first_name": "Ada", "language": "fr", "active": "on"})
    assert missing.status_code == 422
    for field in ("last-name", "email", "phone"):
        assert error_beside(missing.text, f"contact-new-{field}") == "This field is required.", field
    assert 'value="Ada"' in missing.text and count(db, Contact) == 0
    person = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.com", "phone": "(217) 555-0142",
              "language": "fr", "date_format": "YYYY-MM-DD", "role": "buyer", "active": "on"}
    added = post(client, f"{url}/contacts", person)
    assert added.status_code == 303
    record = client.get(added.headers["location"]).text
    assert "Contact Ada Lovelace added." in record and "Contacts (1)" in record  # the record lists its contacts
    duplicate = post(client, f"{url}/contacts", person)
    assert duplicate.status_code == 422 and "already has a contact with this e-mail" in duplicate.text
    assert count(db, Contact) == 1
    with db.transaction() as session:
        contact = session.scalar(select(Contact))
    page_url = f"{url}/contacts/{contact.id}"
    page = client.get(page_url).text
    assert "Ada Lovelace" in page and "Enter a new password" not in page and 'selected>YYYY-MM-DD<' in page

    edited = post(client, page_url, {**person, "last_name": "", "phone": "+44 20 7946 0958"})
    assert edited.status_code == 422 and error_beside(edited.text, "contact-last-name") == "This field is required."
    person.pop("active")
    assert post(client, page_url, {**person, "last_name": "King"}).status_code == 303
    assert post(client, f"{page_url}/status", {"active": "false"}).status_code == 200  # the question first
    assert 'data-testid="contact-status">active<' in client.get(page_url).text
    assert post(client, f"{page_url}/status", {"active": "false", "confirmed": "yes"}).status_code == 303
    assert 'data-testid="contact-status">deactivated<' in client.get(page_url).text
    assert post(client, f"{page_url}/status", {"active": "true"}).status_code == 303

    confirm = client.get(f"{page_url}/reset")
    assert confirm.status_code == 200 and "Yes, send the link" in confirm.text and "ada@example.com" in confirm.text
    assert "Yes, send the link" in post(client, f"{page_url}/reset").text  # not sent without a yes
    assert post(client, f"{page_url}/reset", {"confirmed": "yes"}).headers["location"] == page_url
    [message] = deliver_and_read(db, mail_dir)  # Ada has no password yet: her welcome, with an activation link
    assert message["To"] == "ada@example.com"
    [link] = [u for u in links(message) if "token=" in u]
    assert link.startswith(f"{settings.base_url}/s/{store.slug}/activate?token=")
    with db.transaction() as session:
        assert tokens.peek(session, ACTIVATION, link.split("token=", 1)[1]).contact_id == contact.id
    assert post(client, f"{page_url}/password", {"password": "a-long-enough-secret-42"}).status_code == 403

    with db.transaction() as session:
        session.get(type(store), store.id).allow_manual_password = True
    assert "Enter a new password" in client.get(page_url).text
    weak = post(client, f"{page_url}/password", {"password": "short"})
    assert weak.status_code == 422 and "Use at least 12 characters." in weak.text and 'value="short"' not in weak.text
    asked = post(client, f"{page_url}/password", {"password": "a-long-enough-secret-42"})
    assert asked.status_code == 200 and "Yes, set the password" in asked.text  # the question first
    assert "gets an e-mail saying that staff set their password" in asked.text
    with db.transaction() as session:
        assert session.get(Contact, contact.id).password_hash is None  # nothing set, nothing sent yet
    assert not [m for m in deliver_and_read(db, mail_dir) if m["Subject"].startswith("Our team set")]
    assert post(client, f"{page_url}/password", {"password": "a-long-enough-secret-42", "confirmed": "yes"}
                ).status_code == 303
    with db.transaction() as session:
        assert session.get(Contact, contact.id).password_hash is not None
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    assert post(client, f"{page_url}/reset", {"confirmed": "yes"}).status_code == 303  # now she has one: a reset
    [reset] = [m for m in deliver_and_read(db, mail_dir) if "token=" in " ".join(links(m))]
    [link] = [u for u in links(reset) if "token=" in u]
    assert link.startswith(f"{settings.base_url}/s/{store.slug}/password/reset?token=")
    with db.transaction() as session:
        assert tokens.peek(session, RESET, link.split("token=", 1)[1]).contact_id == contact.id
    history = client.get(url).text
    for action in ("Password set", "Password reset link sent", "Contact activated", "Contact deactivated",
                   "Contact changed", "Contact added"):
        assert action in history, action


def test_reseller_staff_start_at_my_customers(db, client):
    reseller = f.account(db, kind="reseller", name="Reseller Ltd")
    staff = f.staff(db, "reseller_admin", reseller_account_id=reseller.id)
    response = client.post("/console/sign-in", data={"csrf_token": csrf(client), "email": staff.email,
                                                     "password": f.PASSWORD}, follow_redirects=False)
    assert response.headers["location"] == f"/console/resellers/{reseller.id}/customers"
    assert client.get("/console", follow_redirects=False).headers["location"] == response.headers["location"]


def test_console_created_account_on_a_storefront_takes_its_defaults(db, client):
    store = f.storefront(db, default_currency="GBP", default_payment_terms="NET45", default_customer_group="trade")
    sign_in(client, f.staff(db, "csr"))
    f.storefront(db)  # another one: the dialog offers both
    created = post(client, "/console/accounts/new", {**PERSON, "company_name": "Form Defaults Ltd",
                                                     "storefront_id": str(store.id), **ADDRESS})
    assert created.status_code == 303, created.text
    with db.transaction() as session:
        account = session.scalar(select(Account).where(Account.name == "Form Defaults Ltd"))
        assert (account.storefront_id, account.currency, account.payment_terms, account.customer_group) == (
            store.id, "GBP", "NET45", "trade")
