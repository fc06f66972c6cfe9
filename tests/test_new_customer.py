"""The console's "Create customer" dialog over real HTTP (seed 001): a new account and its person in one save, a
person added to an existing account, the link or password that follows, the existing customers ranked by
similarity, and an exact duplicate created only once confirmed."""

from __future__ import annotations

import re

from sqlalchemy import select

from accountdesk.accounts.duplicates import similar_accounts
from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.models import AuditEvent, OutboxMessage
from tests import factories as f
from tests.mailbox import deliver_and_read, links
from tests.test_console_pages import count, error_beside, post, sign_in

NEW = "/console/accounts/new"
PERSON = {"first_name": "Anna", "last_name": "Schmidt", "email": "Anna.Schmidt@Example.com",
          "phone": "+49 30 901820", "language": "de", "active": "on"}
ADDRESS = {"billing_address.line1": "Hauptstr. 1", "billing_address.city": "Köln",
           "billing_address.postcode": "50667", "billing_address.country": "DE"}


def contact_of(db, email: str) -> Contact:
    with db.transaction() as session:
        contact = session.scalar(select(Contact).where(Contact.email == email))
        contact.account.addresses  # noqa: B018 — loaded before the session ends
        return contact


def test_a_new_account_and_its_person_then_the_activation_link(db, client, mail_dir, settings):
    store = f.storefront(db, name="Bike Parts Online", account_number_prefix="BP", allow_manual_password=False)
    sign_in(client, f.staff(db, "csr"))
    dialog = client.get(NEW).text
    for name in ("first-name", "last-name", "email", "phone"):  # mandatory: a red asterisk, and said to be so
        assert re.search(rf'for="new-{name}">[^<]+<span class="req" aria-hidden="true"> \*</span>', dialog), name
        assert re.search(rf'id="new-{name}"[^>]*required aria-required="true"', dialog), name
    assert 'name="company_name"' in dialog and 'name="billing_address.line1"' in dialog

    missing = post(client, NEW, {"first_name": "Anna", "phone": "12", "company_name": "Schmidt Räder",
                                 "billing_address.line1": "Hauptstr. 1", "account": "new"})
    assert missing.status_code == 422
    for field in ("last-name", "email", "billing-address-city", "billing-address-country"):
        assert error_beside(missing.text, f"new-{field}") == "This field is required.", field
    assert 'value="Schmidt Räder"' in missing.text and count(db, Account) == 0 and count(db, Contact) == 0

    created = post(client, NEW, {**PERSON, "account": "new", "company_name": "Schmidt Räder", **ADDRESS})
    assert created.status_code == 303, created.text
    contact = contact_of(db, "anna.schmidt@example.com")
    account = contact.account
    assert created.headers["location"] == f"/console/accounts/{account.id}/contacts/{contact.id}/welcome"
    assert (account.name, account.kind, account.status, account.storefront_id) == ("Schmidt Räder", "b2b", "active",
                                                                                  store.id)
    assert account.number.startswith("BP") and account.preferred_language == "de"
    assert (account.email, account.phone, account.billing_address.city) == ("anna.schmidt@example.com",
                                                                            "+4930901820", "Köln")
    assert (contact.role, contact.status, contact.language, contact.password_hash) == ("account_admin", "invited",
                                                                                      "de", None)
    with db.transaction() as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.account_id == account.id)))
        assert actions == {"account.created", "contact.created"}
        assert session.scalar(select(OutboxMessage.id).where(OutboxMessage.kind == "email")) is None  # not yet

    welcome = client.get(created.headers["location"])
    assert f"Customer {account.number} created." in welcome.text and "Send the activation link" in welcome.text
    assert 'data-testid="manual-password"' not in welcome.text  # the storefront does not allow manual entry
    refused = post(client, f"{created.headers['location']}/password", {"password": "a-long-enough-secret-42"})
    assert refused.status_code == 403 and "does not allow staff to enter passwords" in refused.text

    sent = post(client, f"{created.headers['location']}/link")
    assert sent.headers["location"] == f"/console/accounts/{account.id}"
    shown = client.get(sent.headers["location"]).text
    assert "Welcome e-mail with an activation link sent to anna.schmidt@example.com." in shown
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == "anna.schmidt@example.com"
    [link] = [u for u in links(message) if "token=" in u]
    assert link.startswith(f"{settings.base_url}/s/{store.slug}/activate?token=")
    opened = client.get(link.removeprefix(settings.base_url), follow_redirects=False)  # the token: into a cookie
    form = client.get(opened.headers["location"])
    assert form.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    chosen = client.post(f"/s/{store.slug}/activate", data={"csrf_token": token, "password": "Räder-seit-1987-köln",
                                                            "password_confirm": "Räder-seit-1987-köln"},
                         follow_redirects=False)
    assert chosen.status_code == 303, chosen.text
    contact = contact_of(db, "anna.schmidt@example.com")
    assert contact.status == "active" and contact.password_hash is not None and contact.can_sign_in


def test_a_private_customer_gets_a_password_from_staff_where_the_storefront_allows_it(db, client, mail_dir):
    f.storefront(db, allow_manual_password=True)
    sign_in(client, f.staff(db, "csr"))
    created = post(client, NEW, {**PERSON, "account": "new"})  # no company, no address
    assert created.status_code == 303, created.text
    account = contact_of(db, "anna.schmidt@example.com").account
    assert (account.name, account.kind, account.addresses) == ("Anna Schmidt", "b2c", [])
    welcome = client.get(created.headers["location"]).text
    assert 'data-testid="manual-password"' in welcome and "Add the company" not in welcome
    weak = post(client, f"{created.headers['location']}/password", {"password": "schmidt"})
    assert weak.status_code == 422 and "Use at least 12 characters." in weak.text
    assert contact_of(db, "anna.schmidt@example.com").password_hash is None
    asked = post(client, f"{created.headers['location']}/password", {"password": "a-long-enough-secret-42"})
    assert asked.status_code == 200 and "Yes, set the password" in asked.text  # the question first
    assert contact_of(db, "anna.schmidt@example.com").password_hash is None
    done = post(client, f"{created.headers['location']}/password",
                {"password": "a-long-enough-secret-42", "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"] == f"/console/accounts/{account.id}"
    contact = contact_of(db, "anna.schmidt@example.com")
    assert contact.status == "active" and contact.can_sign_in
    assert [m["To"] for m in deliver_and_read(db, mail_dir)] == ["anna.schmidt@example.com"]  # told of it


def test_a_person_joins_an_existing_account_found_by_search(db, client):
    store = f.storefront(db)
    harbour = f.account(db, name="Harbour Traders", storefront_id=store.id)
    reseller = f.account(db, kind="reseller", name="Reseller Co")
    their_store = f.storefront(db, reseller_account_id=reseller.id)
    theirs = f.account(db, name="Harbour Bakery", parent_reseller_id=reseller.id, storefront_id=their_store.id)
    staff = f.staff(db, "csr")
    sign_in(client, staff)
    joining = {**PERSON, "account": "existing", "account_q": "harbour"}
    listed = post(client, NEW, joining)  # the search: nothing is created until one account is chosen
    assert listed.status_code == 422 and count(db, Contact) == 0
    assert "Harbour Traders" in listed.text and "Harbour Bakery" in listed.text
    assert f'name="account_id" value="{harbour.id}"' in listed.text
    assert error_beside(listed.text, "new-account-id").startswith("Choose the account")
    joined = post(client, NEW, {**joining, "account_id": str(harbour.id)})
    assert joined.status_code == 303, joined.text
    contact = contact_of(db, "anna.schmidt@example.com")
    assert (contact.account_id, contact.storefront_id, contact.role) == (harbour.id, store.id, "buyer")
    assert "Anna Schmidt added to Harbour Traders." in client.get(joined.headers["location"]).text
    assert count(db, Account) == 3

    client.cookies.clear()
    sign_in(client, f.staff(db, "reseller_admin", reseller_account_id=reseller.id))
    own = post(client, NEW, {**joining, "email": "anna@bakery.example", "create_anyway": "on"})
    assert "Harbour Bakery" in own.text and "Harbour Traders" not in own.text  # only what the reseller may see
    foreign = post(client, NEW, {**joining, "email": "anna@bakery.example", "account_id": str(harbour.id),
                                 "create_anyway": "on"})
    assert foreign.status_code == 422 and error_beside(foreign.text, "new-account-id") == "No such account."
    assert count(db, Contact) == 1
    assert post(client, NEW, {**joining, "email": "anna@bakery.example", "account_id": str(theirs.id),
                              "create_anyway": "on"}).status_code == 303


def test_existing_customers_are_ranked_same_name_or_email_first_then_by_similarity(db, client):
    store = f.storefront(db)
    names = ["Annette Schmiedel", "Bernd Maier", "Anne Schmitz", "Anna Schmitt", "Anna Schmidt"]
    made = {name: f.account(db, name=name, storefront_id=store.id) for name in names}
    by_email = f.account(db, name="Nordsee Fisch", storefront_id=store.id)
    f.contact(db, by_email, store, email="anna.schmidt@example.com")
    with db.transaction() as session:
        ranked = similar_accounts(session, None, "Anna Schmidt", "anna.schmidt@example.com")
        shown = [(s.account.name, s.same) for s in ranked]
        assert shown[:3] == [("Anna Schmidt", "name"), ("Nordsee Fisch", "email"), ("Anna Schmitt", "")], shown
        assert {"Annette Schmiedel", "Bernd Maier"}.isdisjoint(name for name, _ in shown)  # not alike enough
        assert shown[3:] in ([], [("Anne Schmitz", "")])  # 0.44 by trigrams (PostgreSQL), 0.83 by difflib
        assert [s.score for s in ranked[2:]] == sorted((s.score for s in ranked[2:]), reverse=True)
        assert [s.account.name for s in similar_accounts(session, None, "anna  SCHMIDT")][:1] == ["Anna Schmidt"]
        assert [s.same for s in similar_accounts(session, None, "Schmidt Räder", also_named=["Anna Schmidt"])][
            :1] == ["name"]  # the person's name beside the company's
        assert similar_accounts(session, made["Bernd Maier"].id, "Anna Schmidt") == []  # another reseller's scope

    sign_in(client, f.staff(db, "csr"))
    hint = client.get(NEW, params={"name": "Anna Schmidt"}).text
    shown = re.findall(r'data-testid="similar-account"><a href="/console/accounts/\d+">([^<]+)<', hint)
    assert shown[:2] == ["Anna Schmidt", "Anna Schmitt"] and "Bernd Maier" not in shown
    assert "same name" in hint and "similar name" in hint


def test_an_exact_duplicate_is_created_only_once_confirmed(db, client):
    store = f.storefront(db)
    f.account(db, name="Anna Schmidt", storefront_id=store.id)
    sign_in(client, f.staff(db, "csr"))
    twin = {**PERSON, "account": "new"}
    asked = post(client, NEW, twin)
    assert asked.status_code == 422 and count(db, Account) == 1 and count(db, Contact) == 0
    assert "A customer with this name or e-mail already exists" in error_beside(asked.text, "new-create-anyway")
    assert 'name="create_anyway"' in asked.text and 'value="Anna"' in asked.text  # what was typed stays
    confirmed = post(client, NEW, {**twin, "create_anyway": "on"})
    assert confirmed.status_code == 303, confirmed.text
    assert count(db, Account, Account.name == "Anna Schmidt") == 2

    same_email = post(client, NEW, {**twin, "first_name": "Annette", "company_name": "Other GmbH"})
    assert same_email.status_code == 422 and "same e-mail" in same_email.text and count(db, Account) == 2


def test_merchant_staff_open_a_resellers_account_from_the_dialog_reseller_staff_cannot(db, client):
    from tests.reseller_world import world  # noqa: PLC0415

    store = f.storefront(db, name="Main Shop")
    sign_in(client, f.staff(db, "csr"))
    assert 'name="reseller"' in client.get(NEW).text
    nameless = post(client, NEW, {**PERSON, "account": "new", "reseller": "on", "first_name": ""})
    assert nameless.status_code == 422 and count(db, Account) == 0  # every problem at once, the company's too
    assert error_beside(nameless.text, "new-company-name") == "A reseller is a company: enter its name."
    assert error_beside(nameless.text, "new-first-name") == "This field is required."
    created = post(client, NEW, {**PERSON, "account": "new", "company_name": "Velo Partner GmbH", "reseller": "on",
                                 **ADDRESS})
    assert created.status_code == 303, created.text
    contact = contact_of(db, "anna.schmidt@example.com")
    account = contact.account
    assert (account.name, account.kind, account.storefront_id, contact.role) == (
        "Velo Partner GmbH", "reseller", store.id, "account_admin")
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "account.created")).all()
        assert event.changes["kind"] == [None, "reseller"]
    record = client.get(f"/console/accounts/{account.id}").text
    assert re.search(r'<span class="field">Kind</span>:\s*<span class="old">—</span> → <span class="new">Reseller<',
                     record)  # the history in words
    assert "Velo Partner GmbH" in client.get("/console/resellers").text  # listed with the resellers

    w = world(db)
    sign_in(client, w.staff)
    assert 'name="reseller"' not in client.get(NEW).text  # reseller staff: no such choice
    before = count(db, Account)
    refused = post(client, NEW, {**PERSON, "email": "max@example.com", "account": "new", "company_name": "Sub Reseller",
                                 "reseller": "on", "storefront_id": str(w.storefront.id)})
    assert refused.status_code == 422 and "Only your distributor can create reseller accounts." in refused.text
    assert count(db, Account) == before
