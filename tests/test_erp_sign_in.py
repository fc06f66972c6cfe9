"""Sign-in against the ERP (both adapters): a contact removed in the ERP is refused and deactivated, an unreachable
ERP is handled per the storefront's policy and recorded; re-verification after 91 days of inactivity with the old
password; the account chooser asks the ERP about the login chosen."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select, update

from accountdesk.contacts.models import Contact
from accountdesk.core.db import utcnow
from accountdesk.core.models import AuditEvent, AuthSession, SingleUseToken
from accountdesk.erp.demo_data import SHARED_EMAIL
from accountdesk.signin.reverification import REVERIFICATION
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.erp_world import erp_login, erp_store, erp_world, file_erp, sap_world  # noqa: F401 (fixtures)
from tests.mailbox import deliver_and_read, links, wait_for
from tests.test_storefront_sign_in import api_sign_in, bearer, form_token, page_sign_in

TOM = "tom.reed@harbourtools.example"
MISSING = "Your login is no longer linked to an account in our records. Please contact us."
DOWN = "We cannot check your account right now. Please try again in a few minutes."
CONFIRM = "For your security, please confirm it is still you: we have sent you an e-mail with a link."


def contact_row(db, contact_id: int) -> Contact:
    with db.transaction() as session:
        return session.get(Contact, contact_id)


def events(db, contact_id: int, action: str) -> list[AuditEvent]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "contact",
                                                             AuditEvent.subject_id == contact_id,
                                                             AuditEvent.action == action).order_by(AuditEvent.id)))


def set_contact(db, contact_id: int, **values) -> None:
    with db.transaction() as session:
        session.execute(update(Contact).where(Contact.id == contact_id).values(**values))


def sessions_of(db, contact_id: int) -> int:
    with db.transaction() as session:
        return len(session.scalars(select(AuthSession).where(AuthSession.contact_id == contact_id)).all())


def test_contact_removed_in_the_erp_is_refused_and_deactivated(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db)
    tom = erp_login(db, store, "C20000", TOM)

    first = api_sign_in(client, store, TOM)
    assert first.status_code == 201, first.text
    checked = contact_row(db, tom.id).erp_checked_at
    assert checked is not None and utcnow() - checked < timedelta(minutes=1)

    erp_world.remove_contact("C20000", TOM)
    refused = api_sign_in(client, store, TOM)
    assert refused.status_code == 403
    assert refused.json()["error"] == {"code": "erp_contact_missing", "message": MISSING}
    assert contact_row(db, tom.id).status == "deactivated"
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current", headers=bearer(first)).status_code == 401
    [marked] = events(db, tom.id, "contact.erp_missing")
    assert "C20000" in marked.note and marked.actor_label == "ERP check at sign-in"
    assert events(db, tom.id, "contact.deactivated")

    # from now on each sign-in asks the ERP again: still missing, it stays refused; the ERP down, it cannot say
    assert api_sign_in(client, store, TOM).json()["error"]["code"] == "erp_contact_missing"
    erp_world.down()
    page = page_sign_in(client, store, TOM)
    assert page.status_code == 503 and DOWN in page.text
    assert contact_row(db, tom.id).status == "deactivated"


def test_a_contact_the_erp_marks_active_again_is_reactivated_at_its_next_sign_in(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db)
    tom = erp_login(db, store, "C20000", TOM)
    erp_world.change_contact("C20000", TOM, active=False)
    refused = api_sign_in(client, store, TOM)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "erp_contact_missing"
    assert (contact_row(db, tom.id).status, contact_row(db, tom.id).deactivated_by_erp) == ("deactivated", True)
    assert api_sign_in(client, store, TOM, "a wrong password").status_code == 401  # the password still counts

    erp_world.change_contact("C20000", TOM, active=True)
    back = api_sign_in(client, store, TOM)

    assert back.status_code == 201, back.text
    row = contact_row(db, tom.id)
    assert (row.status, row.deactivated_by_erp) == ("active", False)
    assert utcnow() - row.erp_checked_at < timedelta(minutes=1)
    [event] = events(db, tom.id, "contact.erp_reactivated")
    assert "C20000" in event.note and event.actor_label == "ERP check at sign-in"
    assert events(db, tom.id, "contact.activated")


def test_a_contact_staff_deactivated_stays_off_whatever_the_erp_says(db, app, client, file_erp):
    app.state.erp = file_erp.gateway
    store = erp_store(db)
    tom = erp_login(db, store, "C20000", TOM)
    file_erp.change_contact("C20000", TOM, active=False)
    assert api_sign_in(client, store, TOM).status_code == 403  # deactivated by the ERP check
    headers = f.token(client, f.staff(db, "csr"))
    account_id = contact_row(db, tom.id).account_id
    assert client.post(f"/api/v1/accounts/{account_id}/contacts/{tom.id}/deactivate",
                       headers=headers).status_code == 200  # staff decide now: it is theirs to lift
    file_erp.change_contact("C20000", TOM, active=True)

    refused = api_sign_in(client, store, TOM)

    assert refused.status_code == 403 and refused.json()["error"]["code"] == "login_inactive"
    assert (contact_row(db, tom.id).status, contact_row(db, tom.id).deactivated_by_erp) == ("deactivated", False)
    assert not events(db, tom.id, "contact.erp_reactivated")


def test_the_erp_is_asked_while_no_transaction_is_open(db, app, client, sap_world):
    """On SQLite a transaction holds the only write lock: other writers must not wait for the ERP's answer."""
    app.state.erp = sap_world.gateway
    store = erp_store(db)
    erp_login(db, store, "C20000", TOM)
    answer = sap_world.sap.hold("GET", "BusinessPartners('C20000')")
    with ThreadPoolExecutor(1) as pool:
        signing_in = pool.submit(api_sign_in, client, store, TOM)
        wait_for(lambda: sap_world.sap.count("BusinessPartners('C20000')"))  # the ERP is thinking
        try:
            # a sign-in holding the write lock now would make this wait for the ERP, then fail as locked
            with db.transaction() as session:
                session.execute(update(Storefront).where(Storefront.id == store.id).values(sign_in_text="Welcome"))
            assert not signing_in.done()  # committed while the ERP had not answered yet
        finally:
            answer.set()
        assert signing_in.result().status_code == 201


def test_refusal_is_shown_on_the_sign_in_page(db, app, client, file_erp):
    app.state.erp = file_erp.gateway
    store = erp_store(db)
    tom = erp_login(db, store, "C20000", TOM)
    file_erp.remove_contact("C20000", TOM)

    response = page_sign_in(client, store, TOM)

    assert response.status_code == 403 and MISSING in response.text
    assert f"accountdesk_sf_{store.slug}" not in response.cookies
    assert contact_row(db, tom.id).status == "deactivated"


def test_erp_down_under_deny_refuses_and_records_it(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db, erp_unreachable_policy="deny")
    tom = erp_login(db, store, "C20000", TOM)
    assert api_sign_in(client, store, TOM).status_code == 201
    erp_world.down()

    refused = api_sign_in(client, store, TOM)

    assert refused.status_code == 503 and refused.headers["Retry-After"] == "60"
    assert refused.json()["error"] == {"code": "erp_unavailable", "message": DOWN}
    [event] = events(db, tom.id, "contact.erp_unreachable")
    assert event.note.startswith("denied: ERP unreachable (policy deny")
    assert contact_row(db, tom.id).status == "active" and sessions_of(db, tom.id) == 1

    page = page_sign_in(client, store, TOM)
    assert page.status_code == 503 and DOWN in page.text
    erp_world.up()
    assert api_sign_in(client, store, TOM).status_code == 201


def test_erp_down_under_allow_trusts_a_fresh_check_only(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db, erp_unreachable_policy="allow", erp_stale_hours=24)
    tom = erp_login(db, store, "C20000", TOM)
    never = erp_login(db, store, "C20000", SHARED_EMAIL)
    assert api_sign_in(client, store, TOM).status_code == 201  # confirmed by the ERP just now
    erp_world.down()

    fresh = api_sign_in(client, store, TOM)
    assert fresh.status_code == 201, fresh.text
    set_contact(db, tom.id, erp_checked_at=utcnow() - timedelta(hours=25))
    stale = api_sign_in(client, store, TOM)
    assert stale.status_code == 503 and stale.json()["error"]["message"] == DOWN
    unchecked = api_sign_in(client, store, SHARED_EMAIL)
    assert unchecked.status_code == 503

    allowed, denied = events(db, tom.id, "contact.erp_unreachable")
    assert allowed.note.startswith("allowed: ERP unreachable (policy allow")
    assert denied.note.startswith("denied:") and "last confirmed" in denied.note
    assert events(db, never.id, "contact.erp_unreachable")[0].note.endswith("last confirmed never)")


def test_logins_made_on_the_web_are_not_asked_about(db, app, client, file_erp):
    """An account pushed or remapped to the ERP keeps its web logins signing in, the ERP never knew them."""
    app.state.erp = file_erp.gateway
    store = f.storefront(db, registration_mode="approval", erp_sync="manual")
    account = f.account(db, storefront_id=store.id, erp_code="C20004")
    web = f.contact(db, account, store, email="new.buyer@pineoak.example")
    file_erp.down()

    assert api_sign_in(client, store, web.email).status_code == 201
    assert contact_row(db, web.id).erp_checked_at is None


def test_the_chooser_asks_the_erp_about_the_login_chosen(db, app, client, erp_world):
    app.state.erp = erp_world.gateway
    store = erp_store(db)
    north = erp_login(db, store, "C20001", SHARED_EMAIL)
    ltd = erp_login(db, store, "C20000", SHARED_EMAIL)
    erp_world.remove_contact("C20001", SHARED_EMAIL)

    offer = api_sign_in(client, store, SHARED_EMAIL)
    assert offer.status_code == 200 and len(offer.json()["accounts"]) == 2
    choice = offer.json()["choice_token"]
    url = f"/api/v1/storefronts/{store.slug}/sessions/choice"
    refused = client.post(url, json={"choice_token": choice, "contact_id": north.id})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "erp_contact_missing"
    assert contact_row(db, north.id).status == "deactivated"

    chosen = client.post(url, json={"choice_token": choice, "contact_id": ltd.id})
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["account"]["number"] == "C20000"
    assert client.post(url, json={"choice_token": choice, "contact_id": ltd.id}).status_code == 422  # used once


def _reverification_links(db, mail_dir, address: str) -> list[str]:
    return [link for m in deliver_and_read(db, mail_dir) if m["To"] == address
            for link in links(m) if "/reverify?token=" in link]


def test_91_days_inactive_expires_then_the_mailed_link_brings_back_the_old_password(db, app, client, file_erp,
                                                                                   mail_dir):
    app.state.erp = file_erp.gateway
    store = erp_store(db)
    tom = erp_login(db, store, "C20000", TOM)
    old_session = api_sign_in(client, store, TOM)
    set_contact(db, tom.id, last_sign_in_at=utcnow() - timedelta(days=91), last_seen_at=utcnow() - timedelta(days=92))

    refused = api_sign_in(client, store, TOM)
    assert refused.status_code == 403
    assert refused.json()["error"] == {"code": "reverification_required", "message": CONFIRM}
    assert contact_row(db, tom.id).status == "expired"
    assert client.get(f"/api/v1/storefronts/{store.slug}/sessions/current",
                      headers=bearer(old_session)).status_code == 401
    [expired] = events(db, tom.id, "contact.expired")
    assert expired.changes == {"status": ["active", "expired"]} and "inactivity period 90 days" in expired.note
    [link] = _reverification_links(db, mail_dir, TOM)
    assert re.fullmatch(rf"http://[^/]+/s/{store.slug}/reverify\?token=[\w-]+", link)
    [message] = [m for m in deliver_and_read(db, mail_dir) if m["To"] == TOM]
    assert "91 days" in message.get_body(preferencelist=("plain",)).get_content()

    # signing in again before following the link: the same refusal, no second mail within a few minutes
    again = page_sign_in(client, store, TOM)
    assert again.status_code == 403 and CONFIRM in again.text
    assert len(_reverification_links(db, mail_dir, TOM)) == 1
    with db.transaction() as session:  # the first link went out six minutes ago
        session.execute(update(SingleUseToken).where(SingleUseToken.purpose == REVERIFICATION)
                        .values(created_at=utcnow() - timedelta(minutes=6)))
    assert api_sign_in(client, store, TOM).json()["error"]["code"] == "reverification_required"
    first, newest = _reverification_links(db, mail_dir, TOM)
    assert first != newest

    path = newest.split("://", 1)[1].split("/", 1)[1]
    stale = client.get("/" + first.split("://", 1)[1].split("/", 1)[1])
    assert stale.status_code == 400 and "This link has expired or was already used." in stale.text
    form = client.get("/" + path)
    assert form.status_code == 200 and "Confirm it is me" in form.text
    assert form.headers["Referrer-Policy"] == "no-referrer"
    token = path.split("token=")[1]
    confirmed = client.post(f"/s/{store.slug}/reverify", data={"csrf_token": form_token(client, "/" + path),
                                                               "token": token}, follow_redirects=False)
    assert confirmed.status_code == 303 and confirmed.headers["location"] == f"/s/{store.slug}/sign-in"
    assert contact_row(db, tom.id).status == "active"
    assert events(db, tom.id, "contact.reverified")[0].changes == {"status": ["expired", "active"]}

    back = api_sign_in(client, store, TOM)  # the old password, no reset
    assert back.status_code == 201, back.text
    reused = client.post(f"/api/v1/storefronts/{store.slug}/reverifications", json={"token": token})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "invalid_token"


def test_inactivity_applies_to_every_storefront_and_zero_turns_it_off(db, client):
    strict = f.storefront(db, inactivity_days=30)
    relaxed = f.storefront(db, inactivity_days=0)
    long_ago = {"last_sign_in_at": utcnow() - timedelta(days=400)}
    f.contact(db, f.account(db, storefront_id=strict.id), strict, email="idle@example.com", **long_ago)
    f.contact(db, f.account(db, storefront_id=relaxed.id), relaxed, email="idle@example.com", **long_ago)
    recent = f.contact(db, f.account(db, storefront_id=strict.id), strict, email="recent@example.com",
                       last_sign_in_at=utcnow() - timedelta(days=29))
    never = f.contact(db, f.account(db, storefront_id=strict.id), strict, email="never@example.com")

    assert api_sign_in(client, strict, "idle@example.com").json()["error"]["code"] == "reverification_required"
    assert api_sign_in(client, relaxed, "idle@example.com").status_code == 201
    assert api_sign_in(client, strict, recent.email).status_code == 201
    assert api_sign_in(client, strict, never.email).status_code == 201


def test_reverification_api_for_headless_storefronts(db, client, mail_dir):
    store = f.storefront(db)
    idle = f.contact(db, f.account(db, storefront_id=store.id), store, email="idle@example.com",
                     last_seen_at=utcnow() - timedelta(days=120))
    assert api_sign_in(client, store, idle.email).status_code == 403
    [link] = _reverification_links(db, mail_dir, idle.email)
    url = f"/api/v1/storefronts/{store.slug}/reverifications"

    assert client.post(url, json={"token": "made-up"}).status_code == 422
    assert client.post(url, json={"token": link.split("token=")[1]}).json() == {"status": "reverified"}
    assert api_sign_in(client, store, idle.email).status_code == 201
