"""Issue 8 hole 5: a registration and a new contact for an existing account, through the API and the pages, answer
an e-mail that already has a login exactly as a new one (status, body, every header, Set-Cookie included) and sign
nobody in; only a storefront whose policy signs registrants in at once tells them apart, as the README says: a new
e-mail gets a session cookie, a known one only with its owner's password. Both cases are held to the same floor
of duration (its rule is tested here; the durations themselves are measured in bench/, not here)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from accountdesk.core.models import AuthSession
from accountdesk.core.timing import EvenDurations
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.test_new_contact import customer, person
from tests.test_registration_api import PASSWORD, body
from tests.test_storefront_sign_in import CSRF, form_token

KNOWN = "known@example.com"
PER_REQUEST = {"date"}  # headers whose value changes with every request, whatever was asked
CLAIM_TOKEN = re.compile(r'name="claim_token" value="([^"]+)"')


@dataclass(frozen=True)
class Shop:
    """An `open` storefront with an account a visitor can prove, which has a login with the e-mail KNOWN."""

    store: Storefront
    account_number: str


Probe = Callable[[TestClient, Shop, str, str], httpx.Response]


@contextmanager
def visitor(app) -> Iterator[TestClient]:
    """A new browser that already holds its CSRF seed, as after opening any page."""
    with TestClient(app) as client:
        client.get("/healthz")
        yield client


def api_registration(client: TestClient, shop: Shop, email: str, password: str) -> httpx.Response:
    url = f"/api/v1/storefronts/{shop.store.slug}/registrations"
    return client.post(url, json=body(email=email, password=password))


def page_registration(client: TestClient, shop: Shop, email: str, password: str) -> httpx.Response:
    url = f"/s/{shop.store.slug}/register"
    fields = body(email=email, password=password)
    address = {f"billing_address.{k}": v for k, v in fields.pop("billing_address").items()}
    return client.post(url, follow_redirects=False, data={**fields, **address, "password_confirm": password,
                                                          "csrf_token": form_token(client, url)})


def _proof(shop: Shop) -> dict[str, str]:
    return {"account_number": shop.account_number, "postcode": "62701", "invoice_number": "INV-1001"}


def api_new_contact(client: TestClient, shop: Shop, email: str, password: str) -> httpx.Response:
    claims = f"/api/v1/storefronts/{shop.store.slug}/account-claims"
    token = client.post(claims, json=_proof(shop)).json()["claim_token"]
    return client.post(f"{claims}/{token}/contacts", json=person(email=email, password=password))


def page_new_contact(client: TestClient, shop: Shop, email: str, password: str) -> httpx.Response:
    url = f"/s/{shop.store.slug}/register/contact"
    login_form = client.post(url, data={**_proof(shop), "csrf_token": form_token(client, url)}).text
    return client.post(f"{url}/login", follow_redirects=False, data={
        **person(email=email, password=password), "password_confirm": password,
        "claim_token": CLAIM_TOKEN.search(login_form).group(1), "csrf_token": CSRF.search(login_form).group(1)})


PROBES: dict[str, Probe] = {"api registration": api_registration, "page registration": page_registration,
                            "api new contact": api_new_contact, "page new contact": page_new_contact}


def open_shop(db, **policy: bool) -> Shop:
    store = f.storefront(db, **policy)
    account = customer(db, store)
    f.contact(db, account, store, email=KNOWN, password=PASSWORD)
    return Shop(store, account.number)


def session_cookie(response: httpx.Response, store: Storefront) -> bool:
    return any(c.startswith(f"accountdesk_sf_{store.slug}=") for c in response.headers.get_list("set-cookie"))


def wire(response: httpx.Response, but_session_of: Storefront | None = None) -> tuple:
    """Everything a client sees of an answer, but the headers that change with every request (and, if asked, the
    storefront's session cookie)."""
    def shown(name: str, value: str) -> bool:
        session = but_session_of is not None and value.startswith(f"accountdesk_sf_{but_session_of.slug}=")
        return name not in PER_REQUEST and not (name == "set-cookie" and session)

    headers = sorted((k, v) for k, v in response.headers.multi_items() if shown(k, v))
    return response.status_code, response.content, headers


def sessions(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(AuthSession))


@pytest.mark.parametrize("probe", PROBES)
def test_known_and_new_emails_get_the_same_answer_and_nobody_is_signed_in(db, app, probe):
    shop = open_shop(db)
    send = PROBES[probe]
    answers = {}
    for label, email, password in (("new", "new@example.com", PASSWORD), ("prober", KNOWN, "Guessed-wrong-2026"),
                                   ("owner", KNOWN, PASSWORD)):
        with visitor(app) as client:
            answers[label] = send(client, shop, email, password)
    assert answers["new"].status_code in (202, 303), answers["new"].text
    assert wire(answers["new"]) == wire(answers["prober"]) == wire(answers["owner"])
    assert not session_cookie(answers["new"], shop.store) and sessions(db) == 0


@pytest.mark.parametrize("probe", PROBES)
def test_signing_in_at_once_is_a_policy_choice_that_tells_new_emails_apart(db, app, probe):
    shop = open_shop(db, sign_in_after_registration=True)
    store, send = shop.store, PROBES[probe]
    with visitor(app) as new, visitor(app) as prober, visitor(app) as owner:
        fresh = send(new, shop, "new@example.com", PASSWORD)
        guessed = send(prober, shop, KNOWN, "Guessed-wrong-2026")
        right = send(owner, shop, KNOWN, PASSWORD)
        assert session_cookie(fresh, store) and not session_cookie(guessed, store)  # what the README warns of
        assert wire(fresh, but_session_of=store) == wire(guessed)  # and nothing else
        assert session_cookie(right, store)  # the owner's own password: an ordinary sign-in
        me = f"/api/v1/storefronts/{store.slug}/sessions/current"
        assert new.get(me).json()["contact"]["email"] == "new@example.com"
        assert owner.get(me).json()["contact"]["email"] == KNOWN and prober.get(me).status_code == 401


def test_costly_and_cheap_answers_wait_for_the_same_floor():
    waits: list[float] = []
    durations = EvenDurations(window=10, sleep=waits.append)
    durations.finished("registration", 0.010, costly=False)  # nothing to compare with yet: no wait
    for ms in (60, 28, 27, 26, 25, 24, 23, 22, 21, 20):  # from the third on, the floor is 28 ms (90th percentile)
        durations.finished("registration", ms / 1000, costly=True)
    durations.finished("registration", 0.008, costly=False)
    durations.finished("registration", 0.040, costly=False)  # already slower: no wait
    durations.finished("new_contact", 0.018, costly=False)  # no costly one of its own: every kind's
    assert waits == pytest.approx([0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.020, 0.010])
