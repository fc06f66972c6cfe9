"""Registrations and approvals under real concurrency: uvicorn on loopback, many HTTP clients at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.models import OutboxMessage
from tests import factories as f
from tests.test_registration_api import body


@pytest.fixture
def settings(settings):
    """One client address sends every request here, so the per-address limits would refuse most of them."""
    return settings.model_copy(update={"rate_limits_enabled": False})


def at_once(count: int, send: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """Send `count` requests from as many clients (own connection, own cookies), released together."""
    barrier = threading.Barrier(count)

    def one(n: int) -> httpx.Response:
        with httpx.Client(timeout=120) as client:
            barrier.wait()
            return send(client, n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def scalar(db, stmt) -> Any:
    with db.transaction() as session:
        return session.scalar(stmt)


def test_fifty_identical_registrations_make_one_account_and_identical_answers(db, live_server):
    store = f.storefront(db)
    url = f"{live_server}/api/v1/storefronts/{store.slug}/registrations"
    responses = at_once(50, lambda client, _: client.post(url, json=body()))
    assert {(r.status_code, r.content) for r in responses} == {(202, responses[0].content)}
    assert scalar(db, select(func.count()).select_from(Account)) == 1
    assert scalar(db, select(func.count()).select_from(Contact)) == 1


def test_twenty_simultaneous_approvals_make_one_decision_and_one_email(db, live_server):
    store = f.storefront(db, registration_mode="approval")
    with httpx.Client(base_url=live_server) as client:
        assert client.post(f"/api/v1/storefronts/{store.slug}/registrations", json=body()).status_code == 202
        headers = f.token(client, f.staff(db, "approver"))
    account_id = scalar(db, select(Account.id))
    url = f"{live_server}/api/v1/registrations/{account_id}/approve"
    responses = at_once(20, lambda client, _: client.post(url, headers=headers))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 19
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"already_decided"}
    approved = select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.payload["template"].as_string() == "registration_approved")
    assert scalar(db, approved) == 1
    assert scalar(db, select(Account.status)) == "active"


def test_two_hundred_registrations_get_two_hundred_distinct_numbers(db, live_server):
    store = f.storefront(db, account_number_prefix="N")
    url = f"{live_server}/api/v1/storefronts/{store.slug}/registrations"
    responses = at_once(200, lambda client, n: client.post(url, json=body(email=f"buyer{n}@example.com")))
    assert [r.status_code for r in responses] == [202] * 200
    with db.transaction() as session:
        numbers = list(session.scalars(select(Account.number)))
    assert len(numbers) == len(set(numbers)) == 200
    assert sorted(numbers) == [f"N{n:06d}" for n in range(1, 201)]
