"""Brute force: one limit and one counter for every way a password is checked, counted before the check, per
(e-mail, client address) pair and per address tightly, per e-mail with growing delays that spare the owner's own
addresses, the owner warned once; forwarded addresses believed only from trusted proxies. Against two real app
processes sharing one database (SQLite; PostgreSQL + Redis) and in process through the TestClient."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from accountdesk.core.models import AuditEvent, OutboxMessage
from accountdesk.core.ratelimit import EMAIL_DELAYS, PAIR_LIMIT
from accountdesk.core.settings import Settings
from accountdesk.core.web import proxy_options
from tests import factories as f
from tests.conftest import free_port
from tests.mailbox import deliver_and_read, read_folder, text_of, wait_for
from tests.test_console_pages import csrf
from tests.test_storefront_sign_in import api_sign_in, bearer, form_token, page_sign_in
from tests.uniques import REDIS_URL, Unique, redis_or_skip

BIN = Path(sys.executable).parent / "accountdesk"
BURST = 30
PAIR_TRIES = int(PAIR_LIMIT.split("/")[0])


# Two app processes -------------------------------------------------------------------------------------------------

@contextmanager
def app_processes(db, workdir: Path, **settings: str) -> Iterator[list[str]]:
    """Two `accountdesk serve` processes on free loopback ports sharing the test's database, their mail in
    `workdir`/mail and their logs next to it. The caller's ACCOUNTDESK_* variables are left out, so that only
    what the test sets counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCOUNTDESK_") and k != "FORWARDED_ALLOW_IPS"}
    env.update({"ACCOUNTDESK_DATABASE_URL": db.url, "ACCOUNTDESK_MAIL_DIR": str(workdir / "mail"),
                "ACCOUNTDESK_SECRET_KEY": os.environ["ACCOUNTDESK_SECRET_KEY"],
                "ACCOUNTDESK_ARGON2_MEMORY_KIB": "1024", "ACCOUNTDESK_ARGON2_TIME_COST": "1",
                "ACCOUNTDESK_OUTBOX_POLL_SECONDS": "0.2", **settings})
    ports, logs = [free_port(), free_port()], [workdir / "server-1.log", workdir / "server-2.log"]
    processes = [subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=log.open("w"),
                                  stderr=subprocess.STDOUT) for port, log in zip(ports, logs, strict=True)]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process, log in zip(bases, processes, logs, strict=True):
            _wait_until_up(base, process, log)
        yield bases
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)


def _wait_until_up(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, f"the app did not start: {log.read_text()}"
        time.sleep(0.2)


def burst(requests: list[tuple[str, dict, dict[str, str]]]) -> Counter[int]:
    """Send every (url, json body, headers) at once, one thread each, released together; count the statuses."""
    start, statuses = threading.Barrier(len(requests)), []

    def send(url: str, body: dict, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=120) as http:
            start.wait()
            statuses.append(http.post(url, json=body, headers=headers).status_code)

    threads = [threading.Thread(target=send, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(statuses)


def wrong_passwords(bases: list[str], path: str, email: str, addresses: list[str] | None = None):
    """BURST sign-ins with wrong passwords, alternating between the processes, from the given forwarded addresses
    in turn (none: no header)."""
    return [(f"{bases[n % 2]}{path}", {"email": email, "password": f"wrong-password-{n}"},
             {"X-Forwarded-For": addresses[n % len(addresses)]} if addresses else {}) for n in range(BURST)]


def from_address(base: str, path: str, email: str, address: str) -> httpx.Response:
    return httpx.post(f"{base}{path}", json={"email": email, "password": f.PASSWORD},
                      headers={"X-Forwarded-For": address}, timeout=60)


@pytest.fixture
def unique() -> Iterator[Unique]:
    made = Unique()
    yield made
    made.forget()


@pytest.fixture
def store_settings(db) -> dict[str, str]:
    """Where the app processes keep their counters: the SQLite sidecar file, or Redis next to PostgreSQL."""
    if not db.is_postgresql:
        return {}
    redis_or_skip()
    return {"ACCOUNTDESK_REDIS_URL": REDIS_URL}


def sign_in_paths(db, unique: Unique):
    """A storefront contact and a staff user, with their sign-in paths."""
    store = f.storefront(db, slug=unique("shop")[:40])
    buyer = f.contact(db, f.account(db, storefront_id=store.id), store,
                      email=unique.email("buyer", f"storefront:{store.slug}"))
    admin = f.staff(db, "admin", email=unique.email("admin"))
    return (f"/api/v1/storefronts/{store.slug}/sessions", buyer), ("/api/v1/staff/tokens", admin)


def test_a_parallel_burst_gets_the_pair_limit_and_the_owner_still_signs_in(db, store_settings, unique, tmp_path):
    (shop_path, buyer), (staff_path, admin) = sign_in_paths(db, unique)
    attacker, owner = unique.address(1), unique.address(2)
    with app_processes(db, tmp_path, ACCOUNTDESK_TRUSTED_PROXIES="127.0.0.1", **store_settings) as bases:
        shop = burst(wrong_passwords(bases, shop_path, buyer.email, [attacker]))
        staff = burst(wrong_passwords(bases, staff_path, admin.email, [attacker]))
        assert shop == staff == {401: PAIR_TRIES, 429: BURST - PAIR_TRIES}
        assert from_address(bases[0], shop_path, buyer.email, owner).status_code == 201
        assert from_address(bases[1], staff_path, admin.email, owner).status_code == 201
        assert from_address(bases[0], shop_path, buyer.email, attacker).status_code == 429


def test_a_distributed_attack_delays_strangers_warns_the_owner_once_and_spares_their_address(
        db, store_settings, unique, tmp_path):
    (shop_path, buyer), _ = sign_in_paths(db, unique)
    home, attackers, stranger = unique.address(200), [unique.address(n) for n in (1, 2, 3)], unique.address(100)
    with app_processes(db, tmp_path, ACCOUNTDESK_TRUSTED_PROXIES="127.0.0.1", **store_settings) as bases:
        assert from_address(bases[0], shop_path, buyer.email, home).status_code == 201  # the owner's address
        attack = burst(wrong_passwords(bases, shop_path, buyer.email, attackers))
        # the e-mail's free attempts, the owner's own sign-in included; then each must wait
        assert attack == {401: EMAIL_DELAYS.free - 1, 429: BURST - EMAIL_DELAYS.free + 1}
        waiting = from_address(bases[1], shop_path, buyer.email, stranger)
        assert waiting.status_code == 429 and 0 < int(waiting.headers["Retry-After"]) <= 60  # the first wait
        assert from_address(bases[1], shop_path, buyer.email, home).status_code == 201
        [warning] = wait_for(lambda: [m for m in read_folder(tmp_path / "mail")
                                      if "trying to sign in" in m["Subject"]], timeout=30)
    assert warning["To"] == buyer.email and f"/s/{buyer_slug(shop_path)}/password/forgot" in text_of(warning)
    assert attack_warnings(db) == [[buyer.email]]


def test_forwarded_addresses_are_ignored_without_trusted_proxies(db, store_settings, unique, tmp_path):
    (shop_path, buyer), _ = sign_in_paths(db, unique)
    rotating = [unique.address(n) for n in range(BURST)]
    try:
        with app_processes(db, tmp_path, **store_settings) as bases:
            assert burst(wrong_passwords(bases, shop_path, buyer.email, rotating)) == {401: PAIR_TRIES,
                                                                                       429: BURST - PAIR_TRIES}
    finally:
        if store_settings:
            unique.forget_address("127.0.0.1")


def test_trusted_proxies_are_addresses_or_networks():
    settings = Settings(trusted_proxies="10.0.0.0/8, 127.0.0.1,::1")
    assert settings.trusted_proxy_list == ["10.0.0.0/8", "127.0.0.1", "::1"]
    assert proxy_options(settings) == {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.0/8", "127.0.0.1", "::1"]}
    assert proxy_options(Settings(trusted_proxies="")) == {"proxy_headers": False, "forwarded_allow_ips": None}
    with pytest.raises(ValidationError):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example.com")


def buyer_slug(path: str) -> str:
    return path.split("/storefronts/", 1)[1].split("/", 1)[0]


def attack_warnings(db) -> list[list[str]]:
    with db.transaction() as session:
        return [row.payload["to"] for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
                if row.payload.get("template") == "sign_in_attack"]


# One counter for every way a password is checked (in process) ------------------------------------------------------

def console_sign_in(client: TestClient, email: str, password: str):
    return client.post("/console/sign-in", data={"csrf_token": csrf(client), "email": email, "password": password},
                       follow_redirects=False)


def staff_token(client: TestClient, email: str, password: str = f.PASSWORD):
    return client.post("/api/v1/staff/tokens", json={"email": email, "password": password})


def test_staff_api_and_console_share_one_counter(db, client):
    user = f.staff(db, "approver")
    for n in range(PAIR_TRIES):
        if n % 2:
            assert staff_token(client, user.email, "not-the-password").status_code == 401
        else:
            assert console_sign_in(client, user.email, "not-the-password").status_code == 400
    refused = staff_token(client, user.email)  # the right password, but this address has had its tries
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert console_sign_in(client, user.email, f.PASSWORD).status_code == 429
    elsewhere = TestClient(client.app, client=("198.51.100.7", 4000))
    assert staff_token(elsewhere, user.email).status_code == 201


def test_current_password_check_shares_the_sign_in_counter(db, client):
    store = f.storefront(db)
    contact = f.contact(db, f.account(db, storefront_id=store.id), store)
    token = bearer(api_sign_in(client, store, contact.email))
    url = f"/api/v1/storefronts/{store.slug}/account/password"
    for n in range(PAIR_TRIES):
        if n % 2:
            assert api_sign_in(client, store, contact.email, "not-the-password").status_code == 401
        else:
            guess = client.put(url, headers=token, json={"current_password": f"guess-{n}", "new_password": "x" * 20})
            assert guess.status_code == 422 and guess.json()["error"]["code"] == "wrong_password"
    right = client.put(url, headers=token, json={"current_password": f.PASSWORD, "new_password": "x" * 20})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0
    assert page_sign_in(client, store, contact.email).status_code == 429


def test_the_owner_of_an_attacked_staff_login_is_warned_once(db, client, mail_dir):
    user = f.staff(db, "admin", email="target@staff.example")
    statuses = Counter()
    for n in range(EMAIL_DELAYS.free + 5):
        attacker = TestClient(client.app, client=(f"203.0.113.{n // 5 + 1}", 4000))
        statuses[staff_token(attacker, user.email, f"guess-{n}").status_code] += 1
    assert statuses == {401: EMAIL_DELAYS.free, 429: 5}
    assert attack_warnings(db) == [[user.email]]
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == user.email and "accountdesk back office" in text_of(message)
    with db.transaction() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "staff.sign_in_attack_warned"))
    assert event.subject_type == "staff_user" and event.subject_id == user.id


# A wrong current password refuses the change, not the count nor the owner's warning ------------------------------

def guess_from_elsewhere(client: TestClient, path: str, form_path: str, n: int, fields: dict[str, str]) -> int:
    """One wrong current password posted with the signed-in user's cookies from a stranger's address (5 each, under
    the per-pair limit); returns the status."""
    stranger = TestClient(client.app, client=(f"203.0.113.{n // 5 + 1}", 4000), cookies=client.cookies)
    token = form_token(stranger, form_path)
    return stranger.post(path, data={"csrf_token": token, "current_password": f"guess-{n}", **fields},
                         follow_redirects=False).status_code


def test_guessing_a_staff_users_current_password_warns_the_owner(db, client, mail_dir):
    user = f.staff(db, "csr", email="guessed@staff.example")
    assert console_sign_in(client, user.email, f.PASSWORD).status_code == 303
    new = {"password": "Another-long-passphrase-9", "password_confirm": "Another-long-passphrase-9"}
    statuses = Counter(guess_from_elsewhere(client, "/console/account/password", "/console/account", n, new)
                       for n in range(EMAIL_DELAYS.free))
    assert statuses == {422: EMAIL_DELAYS.free - 1, 429: 1}  # the sign-in was the first check of the e-mail
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == user.email and "accountdesk back office" in text_of(message)


def test_guessing_a_storefront_users_current_password_warns_the_owner(db, client, mail_dir):
    store = f.storefront(db)
    buyer = f.contact(db, f.account(db, storefront_id=store.id), store, email="guessed@shop.example")
    assert page_sign_in(client, store, buyer.email, follow_redirects=False).status_code == 303
    path = f"/s/{store.slug}/account/password"
    new = {"password": "Another-long-passphrase-9", "password_confirm": "Another-long-passphrase-9"}
    statuses = Counter(guess_from_elsewhere(client, path, path, n, new) for n in range(EMAIL_DELAYS.free))
    assert statuses == {422: EMAIL_DELAYS.free - 1, 429: 1}  # the sign-in was the first check of the e-mail
    [message] = deliver_and_read(db, mail_dir)
    assert message["To"] == buyer.email and f"/s/{store.slug}/password/forgot" in text_of(message)
