"""Staff administration over the API and the console pages: invitations by e-mail, edits, deactivation that ends
sessions and tokens for good, the last admin, reseller staff limited to their own reseller, and a self-registered
reseller's registrant invited on approval."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from accountdesk.core.models import AuditEvent, SingleUseToken
from accountdesk.staff.models import StaffUser
from accountdesk.staff_admin.service import RESELLER_INVITE_LIMIT
from tests import factories as f
from tests.mailbox import deliver_and_read, links
from tests.reseller_world import console_sign_in, csrf_of, world
from tests.test_registration_api import body, url

RESELLER_INVITE_LIMIT_COUNT = int(RESELLER_INVITE_LIMIT.split("/")[0])

USERS = "/api/v1/staff/users"
NEW_PASSWORD = "lantern-orchard-quietly"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _events(db, user_id: int) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return [(e.action, e.actor_label) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.subject_type == "staff_user", AuditEvent.subject_id == user_id)
            .order_by(AuditEvent.id))]


def _post_form(client, url_: str, data: dict[str, str], page: str = "/console/sign-in"):
    return client.post(url_, data={"csrf_token": csrf_of(client.get(page).text), **data}, follow_redirects=False)


def _invitation_link(db, mail_dir, email: str) -> str:
    [message] = [m for m in deliver_and_read(db, mail_dir) if m["To"] == email]
    [link] = [u for u in links(message) if "/console/activate?token=" in u]
    return link.split("8000", 1)[1]


# --- hole 10: deactivation, a role change and a password change end sessions and tokens for good ------------------

def test_deactivation_ends_every_session_and_token_for_good(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    csr = f.staff(db, "csr")
    token = f.token(client, csr)
    assert client.get("/api/v1/accounts", headers=token).status_code == 200
    console_sign_in(client, csr)
    assert client.get("/console/accounts", follow_redirects=False).status_code == 200

    off = client.patch(f"{USERS}/{csr.id}", json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["status"] == "deactivated"
    assert client.get("/api/v1/accounts", headers=token).status_code == 401
    assert client.get("/console/accounts", follow_redirects=False).headers["location"].startswith("/console/sign-in")
    assert client.post("/api/v1/staff/tokens", json={"email": csr.email, "password": f.PASSWORD}).status_code == 401

    on = client.patch(f"{USERS}/{csr.id}", json={"active": True}, headers=admin)
    assert on.status_code == 200 and on.json()["status"] == "active"
    # reactivation lets the user sign in again, but brings no old session or token back
    assert client.get("/api/v1/accounts", headers=token).status_code == 401
    assert client.get("/console/accounts", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/accounts", headers=f.token(client, csr)).status_code == 200
    assert [a for a, _ in _events(db, csr.id)] == ["staff.deactivated", "staff.reactivated"]


def test_a_role_change_ends_the_users_sessions(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    approver = f.staff(db, "approver")
    token = f.token(client, approver)
    changed = client.patch(f"{USERS}/{approver.id}", json={"role": "csr", "name": "Jo Approver"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["role"] == "csr"
    assert client.get("/api/v1/registrations", headers=token).status_code == 401
    fresh = f.token(client, approver)
    assert client.get("/api/v1/registrations", headers=fresh).status_code == 403  # a csr does not approve
    [(action, _)] = _events(db, approver.id)
    with db.transaction() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.subject_id == approver.id))
        assert action == "staff.updated" and event.changes == {"role": ["approver", "csr"],
                                                               "name": ["", "Jo Approver"]}


def test_a_password_change_ends_the_other_sessions_and_tokens(db, client):
    csr = f.staff(db, "csr")
    token = f.token(client, csr)
    console_sign_in(client, csr)
    wrong = _post_form(client, "/console/account/password", {
        "current_password": "not-my-password-at-all", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        "/console/account")
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    weak = _post_form(client, "/console/account/password", {"current_password": f.PASSWORD, "password": "password123",
                                                            "password_confirm": "password123"}, "/console/account")
    assert weak.status_code == 422 and "too common" in weak.text
    assert client.get("/api/v1/accounts", headers=token).status_code == 200
    done = _post_form(client, "/console/account/password", {"current_password": f.PASSWORD, "password": NEW_PASSWORD,
                                                            "password_confirm": NEW_PASSWORD}, "/console/account")
    assert done.status_code == 303
    assert client.get("/api/v1/accounts", headers=token).status_code == 401
    assert client.get("/console/accounts", follow_redirects=False).status_code == 200  # this session goes on
    assert client.post("/api/v1/staff/tokens", json={"email": csr.email, "password": NEW_PASSWORD}).status_code == 201
    assert ("staff.password_changed", csr.email) in _events(db, csr.id)


# --- invitations --------------------------------------------------------------------------------------------------

def test_an_admin_invites_and_the_invitee_chooses_a_password_from_the_mail(db, client, mail_dir):
    boss = f.staff(db, "admin", email="boss@staff.example")
    admin = f.token(client, boss)
    invited = client.post(USERS, json={"email": " Kim@Staff.Example ", "name": "Kim Park", "role": "csr"},
                          headers=admin)
    assert invited.status_code == 201, invited.text
    kim = invited.json()
    assert (kim["email"], kim["status"], kim["role"], kim["totp_enabled"]) == ("kim@staff.example", "invited", "csr",
                                                                              False)
    assert client.post(USERS, json={"email": "kim@staff.example", "role": "csr"},
                       headers=admin).json()["error"]["code"] == "duplicate"
    # before accepting, no password works
    assert client.post("/api/v1/staff/tokens", json={"email": "kim@staff.example", "password": ""}).status_code in (
        401, 422)
    [message] = deliver_and_read(db, mail_dir)
    assert message["Subject"] == "You are invited to the accountdesk console"
    assert "customer service" in message.get_body(("plain",)).get_content()
    [link] = [u.split("8000", 1)[1] for u in links(message) if "/console/activate?token=" in u]

    form = client.get(link)
    assert form.status_code == 200 and "Welcome, Kim Park" in form.text
    assert form.headers["referrer-policy"] == "no-referrer"
    token = link.split("token=", 1)[1]
    weak = _post_form(client, "/console/activate", {"token": token, "password": "kimpark-2024-x",
                                                    "password_confirm": "kimpark-2024-x"}, link)
    assert weak.status_code == 422 and "Do not use your name" in weak.text
    differ = _post_form(client, "/console/activate", {"token": token, "password": NEW_PASSWORD,
                                                      "password_confirm": NEW_PASSWORD + "x"}, link)
    assert differ.status_code == 422 and "The two passwords differ." in differ.text
    done = _post_form(client, "/console/activate", {"token": token, "password": NEW_PASSWORD,
                                                    "password_confirm": NEW_PASSWORD}, link)
    assert done.status_code == 303 and done.headers["location"] == "/console/accounts"
    assert "accountdesk_console=" in done.headers["set-cookie"]
    assert client.get("/console/accounts").status_code == 200
    again = client.get(link)
    assert again.status_code == 400 and "expired or was already used" in again.text

    assert client.post("/api/v1/staff/tokens", json={"email": "kim@staff.example",
                                                     "password": NEW_PASSWORD}).status_code == 201
    resend = client.post(f"{USERS}/{kim['id']}/invitation", headers=admin)
    assert resend.status_code == 409 and resend.json()["error"]["code"] == "invitation_accepted"
    assert [a for a, _ in _events(db, kim["id"])] == ["staff.invited", "staff.invitation_sent",
                                                     "staff.invitation_accepted"]
    assert _events(db, kim["id"])[0][1] == "boss@staff.example"


def test_a_new_invitation_replaces_the_old_link_and_deactivation_voids_it(db, client, mail_dir):
    admin = f.token(client, f.staff(db, "admin"))
    user_id = client.post(USERS, json={"email": "lee@staff.example", "role": "approver"}, headers=admin).json()["id"]
    first = _invitation_link(db, mail_dir, "lee@staff.example")
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    assert client.post(f"{USERS}/{user_id}/invitation", headers=admin).status_code == 202
    second = _invitation_link(db, mail_dir, "lee@staff.example")
    assert client.get(first).status_code == 400 and client.get(second).status_code == 200
    assert client.patch(f"{USERS}/{user_id}", json={"active": False}, headers=admin).status_code == 200
    assert client.get(second).status_code == 400
    assert client.post(f"{USERS}/{user_id}/invitation", headers=admin).json()["error"]["code"] == \
        "staff_user_deactivated"
    with db.transaction() as session:  # the link is kept as a digest only
        digests = list(session.scalars(select(SingleUseToken.token_digest)))
        assert second.split("token=", 1)[1] not in digests


# --- who may do what ----------------------------------------------------------------------------------------------

def test_who_may_administer_staff(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    a, b = world(db, client), world(db, client)
    store = f.storefront(db)
    buyer = f.contact(db, f.account(db, storefront_id=store.id), store)
    buyer_token = client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                              json={"email": buyer.email, "password": f.PASSWORD}).json()["access_token"]
    target = f.staff(db, "csr")
    for headers, status in (({}, 401), (_bearer(buyer_token), 401), (f.token(client, f.staff(db, "csr")), 403),
                            (f.token(client, f.staff(db, "approver")), 403)):
        assert client.get(USERS, headers=headers).status_code == status
        assert client.post(USERS, json={"email": "x@staff.example", "role": "csr"}, headers=headers).status_code \
            == status
        assert client.get(f"{USERS}/{target.id}", headers=headers).status_code == status
        assert client.patch(f"{USERS}/{target.id}", json={"active": False}, headers=headers).status_code == status
        assert client.post(f"{USERS}/{target.id}/invitation", headers=headers).status_code == status
        assert client.delete(f"{USERS}/{target.id}/totp", headers=headers).status_code == status

    everyone = {u["id"] for u in client.get(USERS, headers=admin).json()["items"]}
    assert {a.staff.id, b.staff.id, target.id} <= everyone
    # reseller staff see and change their own reseller's staff only; anything else answers like a missing id
    assert [u["id"] for u in client.get(USERS, headers=a.headers).json()["items"]] == [a.staff.id]
    for foreign in (b.staff.id, target.id, 10**12):
        assert client.get(f"{USERS}/{foreign}", headers=a.headers).status_code == 404
        assert client.patch(f"{USERS}/{foreign}", json={"active": False}, headers=a.headers).status_code == 404
        assert client.post(f"{USERS}/{foreign}/invitation", headers=a.headers).status_code == 404
    assert client.delete(f"{USERS}/{b.staff.id}/totp", headers=a.headers).status_code == 403
    other = client.post(USERS, json={"email": "x@a.example", "reseller_account_id": b.reseller.id}, headers=a.headers)
    assert other.status_code == 404
    as_csr = client.post(USERS, json={"email": "x@a.example", "role": "csr"}, headers=a.headers)
    assert as_csr.status_code == 422 and "role" in as_csr.json()["error"]["fields"]
    colleague = client.post(USERS, json={"email": "Sam@A.example", "name": "Sam"}, headers=a.headers)
    assert colleague.status_code == 201
    assert (colleague.json()["role"], colleague.json()["reseller_account_id"]) == ("reseller_admin", a.reseller.id)
    off = client.patch(f"{USERS}/{colleague.json()['id']}", json={"active": False}, headers=a.headers)
    assert off.status_code == 200 and off.json()["status"] == "deactivated"
    with db.transaction() as session:  # reseller staff changes are in the reseller's history too
        assert session.scalar(select(AuditEvent.account_id).where(AuditEvent.action == "staff.deactivated")) == \
            a.reseller.id
    huge = client.get(f"{USERS}/{2**64}", headers=admin)
    assert huge.status_code == 422


@pytest.mark.parametrize("change", [{"active": False}, {"role": "csr"}])
def test_the_last_active_admin_stays(db, client, change):
    me = f.staff(db, "admin")
    headers = f.token(client, me)
    f.staff(db, "csr")
    client.post(USERS, json={"email": "later@staff.example", "role": "admin"}, headers=headers)  # invited only
    refused = client.patch(f"{USERS}/{me.id}", json=change, headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin"
    assert client.get(USERS, headers=headers).status_code == 200  # nothing changed, still signed in
    other = f.staff(db, "admin")
    assert client.patch(f"{USERS}/{me.id}", json=change, headers=headers).status_code == 200
    other_headers = f.token(client, other)
    back = client.patch(f"{USERS}/{other.id}", json=change, headers=other_headers)
    assert back.status_code == 409 and back.json()["error"]["code"] == "last_admin"


def test_reseller_staff_keep_one_of_theirs_and_roles_do_not_cross(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    a = world(db, client)
    alone = client.patch(f"{USERS}/{a.staff.id}", json={"active": False}, headers=a.headers)
    assert alone.status_code == 409 and alone.json()["error"]["code"] == "last_reseller_admin"
    for user, role in ((a.staff, "csr"), (f.staff(db, "csr"), "reseller_admin")):
        crossed = client.patch(f"{USERS}/{user.id}", json={"role": role}, headers=admin)
        assert crossed.status_code == 422 and "role" in crossed.json()["error"]["fields"]
    # the operator may shut a reseller's console access
    assert client.patch(f"{USERS}/{a.staff.id}", json={"active": False}, headers=admin).status_code == 200
    assert client.get(f"/api/v1/resellers/{a.reseller.id}", headers=a.headers).status_code == 401


def test_the_operator_invites_a_resellers_first_administrator(db, client, mail_dir):
    admin = f.token(client, f.staff(db, "admin"))
    reseller = f.account(db, kind="reseller", name="Harbour IT")
    customer = f.account(db)
    refused = client.post(USERS, json={"email": "r@harbour.example", "role": "reseller_admin",
                                       "reseller_account_id": customer.id}, headers=admin)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "not_a_reseller"
    missing = client.post(USERS, json={"email": "r@harbour.example", "role": "reseller_admin"}, headers=admin)
    assert missing.status_code == 422 and "reseller_account_id" in missing.json()["error"]["fields"]
    made = client.post(USERS, json={"email": "r@harbour.example", "role": "reseller_admin",
                                    "reseller_account_id": reseller.id}, headers=admin)
    assert made.status_code == 201
    [message] = deliver_and_read(db, mail_dir)
    assert "reseller administrator of Harbour IT" in message.get_body(("plain",)).get_content()


# --- a self-registered reseller ----------------------------------------------------------------------------------

def test_approving_a_reseller_invites_its_registrant_to_my_customers(db, client, mail_dir):
    store = f.storefront(db, registration_mode="approval", allow_reseller_registration=True)
    approver = f.token(client, f.staff(db, "approver"))
    assert client.post(url(store), json=body(reseller=True, company_name="Lighthouse IT")).status_code == 202
    assert client.post(url(store), json=body(email="bea@example.com", company_name="Plain Trade")).status_code == 202
    queue = {i["name"]: i["account_id"] for i in client.get("/api/v1/registrations", headers=approver).json()["items"]}
    deliver_and_read(db, mail_dir)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    for account_id in queue.values():
        assert client.post(f"/api/v1/registrations/{account_id}/approve", headers=approver).status_code == 200
    messages = deliver_and_read(db, mail_dir)
    invitations = [m for m in messages if m["Subject"] == "You are invited to the accountdesk console"]
    assert [m["To"] for m in invitations] == ["ada@example.com"]  # the reseller's registrant only
    with db.transaction() as session:
        staff = session.scalar(select(StaffUser).where(StaffUser.email == "ada@example.com"))
        assert staff.role == "reseller_admin" and staff.reseller_account_id == queue["Lighthouse IT"]
    link = next(u for u in links(invitations[0]) if "/console/activate" in u).split("8000", 1)[1]
    done = _post_form(client, "/console/activate", {"token": link.split("token=", 1)[1], "password": NEW_PASSWORD,
                                                    "password_confirm": NEW_PASSWORD}, link)
    assert done.headers["location"] == f"/console/resellers/{queue['Lighthouse IT']}/customers"
    assert client.get(done.headers["location"]).status_code == 200


# --- console pages ------------------------------------------------------------------------------------------------

def test_console_staff_pages(db, client, mail_dir):
    boss = f.staff(db, "admin")
    csr = f.staff(db, "csr")
    a, b = world(db), world(db)
    console_sign_in(client, csr)
    assert 'href="/console/staff"' not in client.get("/console/accounts").text
    assert client.get("/console/staff").status_code == 403
    console_sign_in(client, boss)
    listing = client.get("/console/staff")
    assert listing.status_code == 200 and 'href="/console/staff"' in listing.text
    assert all(u.email in listing.text for u in (boss, csr, a.staff, b.staff))

    refused = _post_form(client, "/console/staff", {"email": "not-an-email", "name": "Nat", "role": "csr"},
                         "/console/staff/new")
    assert refused.status_code == 422 and 'value="Nat"' in refused.text and "valid e-mail" in refused.text
    invited = _post_form(client, "/console/staff", {"email": "nat@staff.example", "name": "Nat", "role": "approver"},
                         "/console/staff/new")
    assert invited.status_code == 303
    record = client.get(invited.headers["location"])
    assert "Invitation sent to nat@staff.example." in record.text and "Send the invitation again" in record.text
    nat = invited.headers["location"]
    deliver_and_read(db, mail_dir)
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    asked = _post_form(client, f"{nat}/invitation", {}, nat)
    assert asked.status_code == 200 and "Yes, send it again" in asked.text  # a question, nothing sent yet
    assert client.get(f"{nat}?confirm=resend-invitation").text.count('data-testid="confirm"') == 1
    assert deliver_and_read(db, mail_dir) == []
    sent = _post_form(client, f"{nat}/invitation", {"confirmed": "yes"}, nat)
    assert sent.status_code == 303 and "Invitation sent again" in client.get(sent.headers["location"]).text
    assert [m["To"] for m in deliver_and_read(db, mail_dir)] == ["nat@staff.example"]

    prefilled = client.get(f"/console/staff/new?reseller={a.reseller.id}")
    assert re.search(rf'<option value="{a.reseller.id}" selected>', prefilled.text)

    confirm = client.get(f"/console/staff/{csr.id}?confirm=deactivate")
    assert 'data-testid="confirm"' in confirm.text
    asked = _post_form(client, f"/console/staff/{csr.id}/status", {"active": "false"}, f"/console/staff/{csr.id}")
    assert asked.status_code == 200 and 'data-testid="confirm"' in asked.text  # a question, nothing done yet
    assert 'data-testid="staff-status">active<' in client.get(f"/console/staff/{csr.id}").text
    off = _post_form(client, f"/console/staff/{csr.id}/status", {"active": "false", "confirmed": "yes"},
                     f"/console/staff/{csr.id}")
    assert off.status_code == 303
    page = client.get(off.headers["location"])
    assert "deactivated and signed out everywhere" in page.text and "Staff user deactivated" in page.text
    last = _post_form(client, f"/console/staff/{boss.id}", {"name": "Boss", "role": "csr"}, f"/console/staff/{boss.id}")
    assert last.status_code == 422 and "At least one active administrator must remain" in last.text

    console_sign_in(client, a.staff)
    mine = client.get("/console/staff")
    assert a.staff.email in mine.text and b.staff.email not in mine.text and boss.email not in mine.text
    assert client.get(f"/console/staff/{b.staff.id}").status_code == 404
    assert _post_form(client, f"/console/staff/{b.staff.id}/status", {"active": "false", "confirmed": "yes"},
                      "/console/staff").status_code == 404


def test_reseller_staff_cannot_probe_many_addresses_for_a_staff_login(db, client):
    w = world(db, client)
    operator = f.token(client, f.staff(db, "admin", email="boss@merchant.example"))
    taken = client.post("/api/v1/staff/users", json={"email": "boss@merchant.example"}, headers=w.headers)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "duplicate"
    for n in range(1, RESELLER_INVITE_LIMIT_COUNT):
        assert client.post("/api/v1/staff/users", json={"email": f"guess{n}@merchant.example"},
                           headers=w.headers).status_code == 201
    refused = client.post("/api/v1/staff/users", json={"email": "csr@merchant.example"}, headers=w.headers)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    console_sign_in(client, w.staff)
    form = client.get("/console/staff/new")
    paged = client.post("/console/staff", data={"csrf_token": csrf_of(form.text), "email": "more@merchant.example"},
                        follow_redirects=False)
    assert paged.status_code == 429
    for n in range(RESELLER_INVITE_LIMIT_COUNT + 1):  # the merchant's admins are not limited
        assert client.post("/api/v1/staff/users", json={"email": f"op{n}@merchant.example", "role": "csr"},
                           headers=operator).status_code == 201
