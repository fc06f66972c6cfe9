"""ERP sync for web accounts (seed 004), both adapters: a push requested in the caller's transaction creates the
customer and writes its code back; an ERP outage during a push is retried until it succeeds, exactly once; an
account that has an ERP code is never pushed again; failures are visible with a retry (API and console); manual
remapping is checked against the ERP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from accountdesk.accounts.models import Account
from accountdesk.app import outbox_handlers
from accountdesk.core.db import utcnow
from accountdesk.core.models import AuditEvent, OutboxMessage
from accountdesk.core.outbox import deliver_due
from accountdesk.registration import erp as erp_service
from accountdesk.storefronts.models import ErpSync, Storefront
from tests import factories as f
from tests.erp_world import erp_world, sap_world  # noqa: F401 (fixtures)
from tests.test_console_pages import error_beside, post, sign_in
from tests.test_storefront_sign_in import api_sign_in

BILLING = {"line1": "2 Mill Lane", "city": "York", "region": "", "postcode": "YO1 7HH", "country": "GB"}


def web_account(db, store, **fields) -> Account:
    fields = {"name": "Lantern Bakery", "currency": "GBP", "customer_group": "110", **fields}
    account = f.account(db, storefront_id=store.id, billing=BILLING, **fields)
    f.contact(db, account, store, email="nia@lantern.example", first_name="Nia", last_name="Baker")
    return account


def request_push(db, account: Account, reason: str = "first order") -> OutboxMessage | None:
    with db.transaction() as session:
        return erp_service.request_erp_push(session, session.get(Account, account.id), reason)


def deliver(db, settings, world, **kwargs) -> int:
    return deliver_due(db, {erp_service.PUSH: erp_service.PushHandler(db, settings, world.gateway)}, **kwargs)


def row(db, message_id: int) -> OutboxMessage:
    with db.transaction() as session:
        return session.get(OutboxMessage, message_id)


def erp_code(db, account_id: int) -> str | None:
    with db.transaction() as session:
        return session.get(Account, account_id).erp_code


def actions(db, account_id: int) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.account_id == account_id)
                                    .order_by(AuditEvent.id)))


def make_due(db) -> None:
    with db.transaction() as session:
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


def test_push_creates_the_customer_and_writes_the_code_back(db, settings, erp_world):
    store = f.storefront(db)
    account = web_account(db, store)
    queued = request_push(db, account)
    assert queued is not None and queued.payload == {"account_id": account.id, "reason": "first order"}
    assert request_push(db, account) is None  # one push waiting is enough

    assert deliver(db, settings, erp_world) == 1

    code = erp_code(db, account.id)
    assert code and row(db, queued.id).status == "sent" and erp_world.creates() == 1
    pushed = erp_world.gateway.get_account(code)
    assert (pushed.name, pushed.billing_postcode, pushed.group, pushed.email) == (
        "Lantern Bakery", "YO1 7HH", "110", account.email)
    assert erp_world.gateway.contact_exists(code, "nia@lantern.example")
    assert actions(db, account.id)[-2:] == ["account.erp_push_requested", "account.erp_pushed"]
    assert request_push(db, account) is None  # it has its ERP code now


def test_erp_outage_during_a_push_then_success_later_exactly_once(db, settings, erp_world):
    account = web_account(db, f.storefront(db))
    queued = request_push(db, account)
    erp_world.down()

    deliver(db, settings, erp_world)
    waiting = row(db, queued.id)
    assert (waiting.status, waiting.attempts) == ("pending", 1) and "ErpUnavailable" in waiting.last_error
    assert waiting.next_attempt_at > utcnow() and erp_code(db, account.id) is None
    erp_world.up()
    assert deliver(db, settings, erp_world) == 0  # backing off: not due yet
    make_due(db)

    assert deliver(db, settings, erp_world) == 1
    assert row(db, queued.id).status == "sent" and erp_code(db, account.id)
    make_due(db)
    assert deliver(db, settings, erp_world) == 0
    assert erp_world.creates() == 1


def test_an_answer_lost_after_the_create_is_retried_without_a_second_customer(db, settings, sap_world):
    account = web_account(db, f.storefront(db))
    queued = request_push(db, account)
    sap_world.sap.slow[("POST", "BusinessPartners")] = 1.6  # the partner is made, the answer comes after the timeout

    deliver(db, settings, sap_world)
    assert row(db, queued.id).status == "pending" and "did not answer in time" in row(db, queued.id).last_error
    sap_world.sap.slow.clear()
    make_due(db)
    deliver(db, settings, sap_world)

    code = erp_code(db, account.id)
    keyed = [p for p in sap_world.sap.partners.values() if p.get("U_WebKey") == f"account-{account.id}"]
    assert [p["CardCode"] for p in keyed] == [code]
    assert sap_world.creates() == 1


def test_an_account_with_an_erp_code_is_never_pushed(db, settings, erp_world):
    store = f.storefront(db)
    linked = f.account(db, storefront_id=store.id, erp_code="C20004")
    assert request_push(db, linked) is None
    later = web_account(db, store)
    queued = request_push(db, later)
    with db.transaction() as session:  # staff remapped it before the worker came round
        session.get(Account, later.id).erp_code = "C20002"

    deliver(db, settings, erp_world)

    assert row(db, queued.id).status == "sent" and erp_code(db, later.id) == "C20002"
    assert erp_world.creates() == 0


def test_push_follows_the_storefront_erp_sync_policy(db):
    on_approval = f.storefront(db, erp_sync="on_approval")
    manual = f.storefront(db, erp_sync="manual")
    account = web_account(db, on_approval)
    with db.transaction() as session:
        live, store = session.get(Account, account.id), session.get(Storefront, on_approval.id)
        assert erp_service.push_per_policy(session, live, store, ErpSync.on_first_order, "order") is None
        assert erp_service.push_per_policy(session, live, store, ErpSync.on_approval, "approved") is not None
        manual_store = session.get(Storefront, manual.id)
        for event in ErpSync:
            assert erp_service.push_per_policy(session, live, manual_store, event, "x") is None


def test_outbox_handlers_of_the_app_push_to_the_erp(db, settings):
    assert set(outbox_handlers(settings, db)) == {"email", erp_service.PUSH, "webhook", "oidc_logout"}
    assert set(outbox_handlers(settings)) == {"email"}


def test_failed_push_is_visible_and_retried(db, settings, client, erp_world):
    admin, reseller_admin = f.staff(db, "admin"), f.staff(db, "reseller_admin",
                                                          reseller_account_id=f.account(db, kind="reseller").id)
    account = web_account(db, f.storefront(db))
    queued = request_push(db, account, "approved")
    erp_world.down()
    deliver(db, settings, erp_world, max_attempts=1)  # retries used up
    headers = f.token(client, admin)

    failed = client.get("/api/v1/erp/pushes", params={"status": "failed"}, headers=headers).json()["items"]
    assert [(p["id"], p["account_number"], p["status"], p["reason"]) for p in failed] == [
        (queued.id, account.number, "failed", "approved")]
    assert "ErpUnavailable" in failed[0]["last_error"]
    assert client.get("/api/v1/erp/pushes", params={"status": "pending"}, headers=headers).json()["items"] == []
    assert client.get("/api/v1/erp/pushes", headers=f.token(client, reseller_admin)).status_code == 403

    sign_in(client, admin)
    console = client.get("/console/erp")
    assert console.status_code == 200 and "Lantern Bakery" in console.text and "ErpUnavailable" in console.text
    assert f'action="/console/erp/pushes/{queued.id}/retry"' in console.text

    erp_world.up()
    retried = client.post(f"/api/v1/erp/pushes/{queued.id}/retry", headers=headers)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    again = client.post(f"/api/v1/erp/pushes/{queued.id}/retry", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "push_not_failed"
    assert client.post("/api/v1/erp/pushes/999999/retry", headers=headers).status_code == 404
    deliver(db, settings, erp_world)
    assert erp_code(db, account.id) and erp_world.creates() == 1
    assert "account.erp_push_retried" in actions(db, account.id)
    assert "Nothing waiting" in client.get("/console/erp").text


def test_a_push_the_erp_refuses_fails_at_once_and_is_retried_from_the_console(db, settings, client, sap_world):
    account = web_account(db, f.storefront(db), customer_group="trade")  # SAP groups are numeric codes
    queued = request_push(db, account)

    deliver(db, settings, sap_world)

    failed = row(db, queued.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "The ERP refused the customer: GroupCode must be a numeric SAP code" in failed.last_error
    sign_in(client, f.staff(db, "csr"))
    assert "GroupCode must be a numeric SAP code" in client.get("/console/erp").text
    with db.transaction() as session:
        session.get(Account, account.id).customer_group = "100"
    retried = post(client, f"/console/erp/pushes/{queued.id}/retry")
    assert retried.status_code == 303 and retried.headers["location"] == "/console/erp"
    deliver(db, settings, sap_world)
    assert sap_world.gateway.get_account(erp_code(db, account.id)).group == "100"


@pytest.mark.parametrize("role", ["admin", "csr"])
def test_manual_remap_is_checked_against_the_erp(db, client, erp_world, role):
    client.app.state.erp = erp_world.gateway
    store = f.storefront(db, registration_mode="approval", erp_sync="manual")
    account = web_account(db, store)
    other = f.account(db, erp_code="C20002")
    headers = f.token(client, f.staff(db, role))
    url = f"/api/v1/accounts/{account.id}/erp-code"

    unknown = client.put(url, json={"erp_code": "C99999"}, headers=headers)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"] == {"erp_code": "The ERP has no customer with the code C99999."}
    taken = client.put(url, json={"erp_code": "C20002"}, headers=headers)
    assert taken.status_code == 409 and taken.json()["error"]["fields"]["erp_code"]
    assert client.put(url, json={"erp_code": ""}, headers=headers).status_code == 422
    reseller_staff = f.staff(db, "reseller_admin", reseller_account_id=f.account(db, kind="reseller").id)
    assert client.put(url, json={"erp_code": "C20004"}, headers=f.token(client, reseller_staff)).status_code == 403
    assert erp_code(db, account.id) is None and erp_code(db, other.id) == "C20002"

    mapped = client.put(url, json={"erp_code": "C20004"}, headers=headers)
    assert mapped.status_code == 200 and mapped.json()["erp_code"] == "C20004"
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "account.erp_remapped")).all()
        assert event.changes == {"erp_code": [None, "C20004"]} and "Pine & Oak Joinery" in event.note
    assert api_sign_in(client, store, "nia@lantern.example").status_code == 201  # the login keeps signing in

    erp_world.down()
    down = client.put(url, json={"erp_code": "C20000"}, headers=headers)
    assert down.status_code == 503 and down.json()["error"]["code"] == "erp_unavailable"
    assert erp_code(db, account.id) == "C20004"


def test_remap_from_the_account_record_page(db, client, erp_world):
    client.app.state.erp = erp_world.gateway
    account = web_account(db, f.storefront(db, erp_sync="manual"))
    reseller = f.account(db, kind="reseller")
    sign_in(client, f.staff(db, "csr"))

    record = client.get(f"/console/accounts/{account.id}")
    assert 'data-testid="erp-code-form"' in record.text and "Not linked to an ERP customer yet." in record.text
    refused = post(client, f"/console/accounts/{account.id}/erp-code", {"erp_code": "C404"})
    assert refused.status_code == 422
    assert error_beside(refused.text, "erp-erp-code") == "The ERP has no customer with the code C404."
    mapped = post(client, f"/console/accounts/{account.id}/erp-code", {"erp_code": "C20004"})
    assert mapped.status_code == 303 and erp_code(db, account.id) == "C20004"
    assert "ERP customer <strong>C20004</strong>" in client.get(f"/console/accounts/{account.id}").text

    client.cookies.clear()
    sign_in(client, f.staff(db, "reseller_admin", reseller_account_id=reseller.id))
    assert post(client, f"/console/accounts/{account.id}/erp-code", {"erp_code": "C20000"}).status_code == 403
