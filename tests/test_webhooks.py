"""Webhooks end to end over real HTTP: events written with the change, delivered to a loopback receiver that checks
every signature with the Standard Webhooks reference verifier; retries in order per subject while the endpoint is
down, secret rotation, the SSRF guard, redirects, time limits, disabling after failures, replay."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks.webhooks import WebhookVerificationError

from accountdesk.app import outbox_handlers
from accountdesk.core import outbox
from accountdesk.core.db import Database
from accountdesk.core.models import OutboxMessage
from accountdesk.core.settings import Settings
from accountdesk.webhooks.delivery import SENDERS
from accountdesk.webhooks.models import WebhookEndpoint
from tests import factories as f
from tests.webhook_receiver import Receiver, receiving

ACCOUNT_EVENTS = ["account.created", "account.updated", "account.deactivated", "contact.created",
                  "contact.deactivated", "contact.activated"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": True, "webhook_retry_seconds": "0.05",
                                       "webhook_timeout_seconds": 3.0})  # a loaded machine answers late


@pytest.fixture
def admin(client: TestClient, db: Database) -> dict[str, str]:
    return f.token(client, f.staff(db, "admin", email="owner@staff.example"))


@pytest.fixture
def receiver() -> Any:
    with receiving() as r:
        yield r


def register(client: TestClient, admin: dict[str, str], url: str, events: list[str] | None = None,
             **fields: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/webhooks/endpoints", headers=admin,
                         json={"url": url, "event_types": events or ACCOUNT_EVENTS, **fields})
    assert answer.status_code == 201, answer.text
    assert answer.json()["secret"].startswith("whsec_")
    return answer.json()


def deliver(db: Database, settings: Settings, *, until_idle: bool = True, seconds: float = 10) -> None:
    """Run the outbox worker's passes until nothing is waiting (retries included), or once."""
    handlers = outbox_handlers(settings, db)
    deadline = time.monotonic() + seconds
    while True:
        outbox.deliver_due(db, handlers)
        if not until_idle or not waiting(db):
            return
        assert time.monotonic() < deadline, "deliveries still waiting"
        time.sleep(0.02)


def waiting(db: Database) -> int:
    with db.transaction() as session:
        return len(session.scalars(select(OutboxMessage.id).where(OutboxMessage.status.in_(outbox.WAITING))).all())


def new_account(client: TestClient, admin: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/accounts", headers=admin, json={"name": name, "email": "a@example.com", **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def rename(client: TestClient, admin: dict[str, str], account_id: int, name: str) -> None:
    answer = client.patch(f"/api/v1/accounts/{account_id}", headers=admin, json={"name": name})
    assert answer.status_code == 200, answer.text


def test_events_are_signed_and_carry_small_versioned_payloads(client: TestClient, db: Database, settings: Settings,
                                                              admin: dict[str, str], receiver: Receiver) -> None:
    store, other = f.storefront(db), f.storefront(db)
    everywhere = register(client, admin, f"{receiver.url}/all")
    own = register(client, admin, f"{receiver.url}/store", ["account.created"], storefront_id=store.id)
    account = new_account(client, admin, "Signed Ltd", storefront_id=store.id)
    new_account(client, admin, "Elsewhere Ltd", storefront_id=other.id)
    rename(client, admin, account["id"], "Signed and Sealed Ltd")
    assert client.patch(f"/api/v1/accounts/{account['id']}", headers=admin,
                        json={"status": "inactive"}).status_code == 200
    contact = client.post(f"/api/v1/accounts/{account['id']}/contacts", headers=admin, json={
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+13125550100",
        "storefront_id": store.id})
    assert contact.status_code == 201, contact.text
    assert client.post(f"/api/v1/accounts/{account['id']}/contacts/{contact.json()['id']}/deactivate",
                       headers=admin).status_code == 200

    deliver(db, settings)

    everything = receiver.accepted("/all")  # in order per account (subject); accounts may interleave
    assert sorted(r.verify(everywhere["secret"])["type"] for r in everything) == sorted([
        "account.created", "account.created", "account.updated", "account.deactivated", "contact.created",
        "contact.deactivated"])
    for got in everything:
        with pytest.raises(WebhookVerificationError):
            got.verify(own["secret"])  # another endpoint's secret does not fit
    about = [r for r in everything if r.event["data"]["account_id"] == account["id"]]
    assert [r.event["type"] for r in about] == ["account.created", "account.updated", "account.deactivated",
                                                 "contact.created", "contact.deactivated"]
    first = about[0].verify(everywhere["secret"])
    assert first["version"] == 1 and first["timestamp"].endswith("Z")
    assert first["data"] == {"account_id": account["id"], "number": account["number"], "kind": "b2b",
                             "status": "active", "storefront_id": store.id}
    assert about[2].event["data"]["status"] == "inactive"
    assert about[3].event["data"]["email"] == "ada@example.com"
    assert len({r.headers["webhook-id"] for r in everything}) == len(everything)
    mine = receiver.accepted("/store")  # a storefront's endpoint: its own storefront's events it asked for
    assert [r.verify(own["secret"])["data"]["account_id"] for r in mine] == [account["id"]]
    assert mine[0].headers["webhook-id"] == about[0].headers["webhook-id"]  # one event, one id

    log = client.get(f"/api/v1/webhooks/endpoints/{everywhere['id']}/deliveries", headers=admin).json()
    assert [d["status"] for d in log] == ["delivered"] * 6 and {d["response_status"] for d in log} == {204}


def test_a_change_that_rolls_back_sends_nothing(client: TestClient, db: Database, settings: Settings,
                                                admin: dict[str, str], receiver: Receiver) -> None:
    register(client, admin, receiver.url)
    refused = client.post("/api/v1/accounts", headers=admin, json={"name": "Bad", "email": "a@example.com",
                                                                  "storefront_id": 999_999})
    assert refused.status_code == 422
    deliver(db, settings)
    assert receiver.accepted() == [] and waiting(db) == 0


def test_an_endpoint_down_for_a_while_gets_everything_once_in_order(client: TestClient, db: Database,
                                                                    settings: Settings, admin: dict[str, str],
                                                                    receiver: Receiver) -> None:
    endpoint = register(client, admin, receiver.url)
    receiver.status = 503
    first, second = new_account(client, admin, "One v1"), new_account(client, admin, "Two v1")
    for version in range(2, 5):
        rename(client, admin, first["id"], f"One v{version}")
        rename(client, admin, second["id"], f"Two v{version}")
    for _ in range(4):  # a few failed passes: only the head of each subject is tried, later events wait
        deliver(db, settings, until_idle=False)
        time.sleep(0.06)
    assert receiver.accepted() == []
    tried = {r.headers["webhook-id"] for r in receiver.refused}
    assert len(tried) == 2  # the first event of each account, retried; none of the later ones overtook them

    receiver.status = 200
    deliver(db, settings)

    got = receiver.accepted()
    assert len(got) == 8 and len({r.headers["webhook-id"] for r in got}) == 8  # none lost, none doubled
    for account in (first, second):
        mine = [r.verify(endpoint["secret"]) for r in got if r.event["data"]["account_id"] == account["id"]]
        assert [e["type"] for e in mine] == ["account.created", *["account.updated"] * 3]
        stamps = [e["timestamp"] for e in mine]
        assert stamps == sorted(stamps)
    with db.transaction() as session:
        assert session.get(WebhookEndpoint, endpoint["id"]).failing_since is None


def test_a_failing_endpoint_in_a_batch_neither_blocks_nor_doubles_the_others(client: TestClient, db: Database,
                                                                            settings: Settings,
                                                                            admin: dict[str, str],
                                                                            receiver: Receiver) -> None:
    with receiving() as down:
        down.status = 500
        working = register(client, admin, f"{receiver.url}/up")
        failing = register(client, admin, f"{down.url}/down")
        accounts = [new_account(client, admin, f"Batch {n} v1") for n in range(3)]
        for account in accounts:
            rename(client, admin, account["id"], f"Batch {account['id']} v2")
        for _ in range(3):  # each pass claims both endpoints' rows together; the failing ones wait for a retry
            deliver(db, settings, until_idle=False)
            time.sleep(0.06)

        got = receiver.accepted("/up")
        assert len(got) == 6 and len({r.headers["webhook-id"] for r in got}) == 6  # all sent, none twice
        for account in accounts:
            assert [r.verify(working["secret"])["type"] for r in got if r.event["data"]["account_id"] ==
                    account["id"]] == ["account.created", "account.updated"]
        assert {r.event["type"] for r in down.refused} == {"account.created"}  # only each subject's head is retried
        log = client.get(f"/api/v1/webhooks/endpoints/{working['id']}/deliveries", headers=admin).json()
        assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 1)] * 6
        retried = client.get(f"/api/v1/webhooks/endpoints/{failing['id']}/deliveries", headers=admin).json()
        heads = [d for d in retried if d["attempts"]]
        assert len(heads) == 3 and all(d["status"] == "pending" and d["response_status"] == 500 for d in heads)
        detail = client.get(f"/api/v1/webhooks/deliveries/{heads[0]['id']}", headers=admin).json()
        assert [a["response_status"] for a in detail["attempt_log"]] == [500] * heads[0]["attempts"]

        down.status = 204
        deliver(db, settings)
        assert len(receiver.accepted("/up")) == 6  # the others' recovery sends nothing again to the working one
        came = down.accepted("/down")
        assert len(came) == 6 and len({r.headers["webhook-id"] for r in came}) == 6
        for account in accounts:
            assert [r.verify(failing["secret"])["type"] for r in came if r.event["data"]["account_id"] ==
                    account["id"]] == ["account.created", "account.updated"]


def test_a_batch_goes_out_at_once_over_kept_alive_connections(client: TestClient, db: Database, settings: Settings,
                                                              admin: dict[str, str], receiver: Receiver) -> None:
    endpoint = register(client, admin, receiver.url)
    receiver.status, receiver.answer, receiver.answer_delay = 200, b"thanks " * 300, 0.05  # slow to read
    for n in range(12):
        new_account(client, admin, f"Busy {n}")
    deliver(db, settings)
    log = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin).json()
    assert [(d["status"], d["attempts"], d["last_error"]) for d in log] == [("delivered", 1, "")] * 12
    assert len(receiver.accepted()) == 12
    assert len({r.connection for r in receiver.accepted()}) <= SENDERS  # connections kept and reused


def test_secret_rotation_signs_with_both_during_the_overlap_only(client: TestClient, db: Database,
                                                                 settings: Settings, admin: dict[str, str],
                                                                 receiver: Receiver) -> None:
    endpoint = register(client, admin, receiver.url)
    old = endpoint["secret"]
    rotated = client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/secret", headers=admin, json={})
    assert rotated.status_code == 200 and rotated.json()["previous_secret_until"]
    new = rotated.json()["secret"]
    assert new != old
    new_account(client, admin, "During overlap")
    deliver(db, settings)
    during = receiver.accepted()[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verify(old)["type"] == during.verify(new)["type"] == "account.created"

    newest = client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/secret", headers=admin,
                         json={"overlap_hours": 0}).json()["secret"]  # no overlap: the previous one ends now
    new_account(client, admin, "After overlap")
    deliver(db, settings)
    after = receiver.accepted()[-1]
    assert after.verify(newest)["data"]["number"]
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            after.verify(stale)


def test_private_targets_are_refused_unless_allowed(client: TestClient, db: Database, settings: Settings,
                                                    admin: dict[str, str], receiver: Receiver) -> None:
    endpoint = register(client, admin, receiver.url)
    strict = settings.model_copy(update={"webhook_allow_private_targets": False})
    new_account(client, admin, "Probe")
    deliver(db, strict)
    assert receiver.accepted() == [] and receiver.refused == []  # never connected
    log = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin).json()
    assert log[0]["status"] == "failed" and "refused" in log[0]["last_error"]

    listed = settings.model_copy(update={"webhook_allow_private_targets": False,
                                         "webhook_allowed_networks": "127.0.0.0/8"})
    assert client.post(f"/api/v1/webhooks/deliveries/{log[0]['id']}/replay", headers=admin).status_code == 202
    deliver(db, listed)
    assert len(receiver.accepted()) == 1  # an allowed network is reached

    app_strict = TestClient(_app(strict, db))
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.5/x", "http://[::1]/x", "http://169.254.169.254/latest",
                "http://localhost/x", "http://[::ffff:127.0.0.1]/x", "ftp://example.com/x", "http://u:p@example.com/"):
        answer = app_strict.post("/api/v1/webhooks/endpoints", headers=admin,
                                 json={"url": url, "event_types": ["account.created"]})
        assert answer.status_code == 422, url
        assert answer.json()["error"]["fields"]["url"], url


def _app(settings: Settings, db: Database) -> Any:
    from accountdesk.app import create_app

    return create_app(settings, db)


def test_redirects_are_not_followed_and_slow_endpoints_time_out(client: TestClient, db: Database,
                                                                settings: Settings, admin: dict[str, str],
                                                                receiver: Receiver) -> None:
    endpoint = register(client, admin, f"{receiver.url}/hook")
    receiver.redirect_to = "/elsewhere"
    new_account(client, admin, "Redirected")
    deliver(db, settings, until_idle=False)
    assert [r.path for r in receiver.refused] == ["/hook"] and receiver.accepted() == []
    delivery = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin).json()[0]
    assert delivery["status"] == "pending" and delivery["response_status"] == 302

    receiver.redirect_to, receiver.delay = None, 2.0
    time.sleep(0.06)
    started = time.monotonic()
    deliver(db, settings.model_copy(update={"webhook_timeout_seconds": 0.5}), until_idle=False)
    assert time.monotonic() - started < 1.8  # the 0.5 s limit, not the receiver's 2 s
    detail = client.get(f"/api/v1/webhooks/deliveries/{delivery['id']}", headers=admin).json()
    assert [a["response_status"] for a in detail["attempt_log"]] == [302, None]
    assert "timed out" in detail["attempt_log"][1]["error"] and detail["attempt_log"][1]["duration_ms"] < 1500


def test_an_endpoint_failing_for_too_long_is_disabled_and_its_owner_told(client: TestClient, db: Database,
                                                                         settings: Settings, admin: dict[str, str],
                                                                         receiver: Receiver, mail_dir: Path) -> None:
    impatient = settings.model_copy(update={"webhook_disable_after_hours": 0.3 / 3600})
    endpoint = register(client, admin, receiver.url)
    receiver.status = 500
    for n in range(3):
        new_account(client, admin, f"Lost {n}")
    deliver(db, impatient, until_idle=False)
    time.sleep(0.35)
    deliver(db, impatient)  # the next failure is past the limit: disabled, and nothing waits any more

    state = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=admin).json()
    assert state["enabled"] is False and state["disabled_reason"] == "failing"
    log = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin).json()
    assert [d["status"] for d in log] == ["failed"] * 3
    letters = [p.read_text() for p in mail_dir.glob("*.eml")]
    assert sum("owner@staff.example" in text and receiver.url in text for text in letters) == 1  # once per batch

    new_account(client, admin, "Not sent while disabled")
    assert client.post(f"/api/v1/webhooks/deliveries/{log[0]['id']}/replay", headers=admin).json()["error"][
        "code"] == "webhook_endpoint_disabled"
    receiver.status = 200
    assert client.patch(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=admin,
                        json={"enabled": True}).json()["enabled"] is True
    for delivery in reversed(log):
        assert client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/replay", headers=admin).status_code == 202
    deliver(db, impatient)
    assert sorted(r.verify(endpoint["secret"])["data"]["number"] for r in receiver.accepted()) == sorted(
        d["event"]["data"]["number"] for d in log)  # three accounts: sent together, in any order


def test_replay_sends_the_same_event_again(client: TestClient, db: Database, settings: Settings,
                                           admin: dict[str, str], receiver: Receiver) -> None:
    endpoint = register(client, admin, receiver.url)
    new_account(client, admin, "Replayed")
    deliver(db, settings)
    delivery = client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin).json()[0]
    replayed = client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/replay", headers=admin)
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    again = client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/replay", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "webhook_delivery_pending"
    deliver(db, settings)
    first, second = receiver.accepted()
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    second.verify(endpoint["secret"])
    detail = client.get(f"/api/v1/webhooks/deliveries/{delivery['id']}", headers=admin).json()
    assert [a["response_status"] for a in detail["attempt_log"]] == [204, 204]


def test_sign_ins_only_reach_endpoints_that_ask_for_them(client: TestClient, db: Database, settings: Settings,
                                                         admin: dict[str, str], receiver: Receiver) -> None:
    store = f.storefront(db)
    buyer = f.contact(db, f.account(db, storefront_id=store.id), store)
    register(client, admin, f"{receiver.url}/quiet")
    loud = register(client, admin, f"{receiver.url}/loud", ["login.signed_in"])
    signed_in = client.post(f"/api/v1/storefronts/{store.slug}/sessions",
                            json={"email": buyer.email, "password": f.PASSWORD})
    assert signed_in.status_code == 201, signed_in.text
    deliver(db, settings)
    assert receiver.accepted("/quiet") == []
    event = receiver.accepted("/loud")[0].verify(loud["secret"])
    assert event["type"] == "login.signed_in" and event["data"]["contact_id"] == buyer.id


def test_bad_endpoint_input_is_a_4xx(client: TestClient, db: Database, admin: dict[str, str]) -> None:
    for body in ({"url": "https://hooks.example.com/", "event_types": ["account.exploded"]},
                 {"url": "https://hooks.example.com/", "event_types": []},
                 {"url": "https://hooks.example.com/", "event_types": ["account.created"], "storefront_id": 999},
                 {"url": "not a url", "event_types": ["account.created"]}):
        answer = client.post("/api/v1/webhooks/endpoints", headers=admin, json=body)
        assert answer.status_code == 422, body
        assert answer.json()["error"]["code"]
    assert client.get("/api/v1/webhooks/endpoints/999", headers=admin).status_code == 404
    assert client.post("/api/v1/webhooks/deliveries/999/replay", headers=admin).status_code == 404


def test_events_are_documented_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    documented = spec["webhooks"]
    assert {"account.approved", "contact.expired", "order.placed", "erp_push.failed"} <= set(documented)
    schema = documented["order.placed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/OrderPlacedEvent")
