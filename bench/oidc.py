"""Section: the OpenID Connect token endpoint through HTTP with 2 app processes: client-credential grants (a
storefront backend's token), code exchanges (authorize + token, PKCE) and refreshes (rotation).

The client-credential clients are lean (a keep-alive socket each, sending one request encoded once and reading the
status line, the headers and the Content-Length body): a real deployment's backends run on their own machines, while
here they share the app's 2 cores, and httpx's ~1 ms of CPU per request would be taken from the server under test.
An answer counts only when it is a 200 whose body holds an access token. The other grants keep httpx (they also
follow redirects and read JSON); their rates are not targets."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bench.common import (
    App,
    CpuWatch,
    Target,
    database_cpu_seconds,
    fresh_database,
    make_staff,
    percentile,
    print_table,
    rate,
    running_app,
)
from bench.common import sign_in as staff_sign_in
from bench.runner import Bench

NAME = "oidc"
TITLE = "oidc: token endpoint (client credentials, code exchange, refresh) through HTTP, 2 app processes"
WORKERS = 2
TARGET_CLIENT_CREDENTIALS = 500.0
REDIRECT = "https://shop.example/callback"
PASSWORD = "bench-buyer-password-2026"


@dataclass
class Run:
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class Shop:
    slug: str
    backend: tuple[str, str]
    rp: tuple[str, str]
    buyer_emails: list[str]


def _prepare(target: Target, app_url: str, clients: int) -> Shop:
    from accountdesk.accounts import service as accounts
    from accountdesk.contacts.models import Contact
    from accountdesk.core.audit import Actor
    from accountdesk.core.db import utcnow
    from accountdesk.core.security import hash_password
    from accountdesk.storefronts.models import Storefront

    with target.db.transaction() as session:
        store = Storefront(slug="bench", name="Bench shop")
        session.add(store)
        session.flush()
        account = accounts.create_account(session, Actor.system(), None, {"name": "Bench Buyer Ltd",
                                                                           "storefront_id": store.id})
        password_hash = hash_password(PASSWORD)
        emails = [f"buyer{i}@bench.example" for i in range(clients)]
        session.add_all(Contact(account_id=account.id, storefront_id=store.id, first_name="Bench", last_name=str(i),
                                email=email, status="active", password_hash=password_hash,
                                email_verified_at=utcnow()) for i, email in enumerate(emails))
    email = make_staff(target, 1)[0]
    with httpx.Client(base_url=app_url, timeout=30) as client:
        staff = {"Authorization": f"Bearer {staff_sign_in(client, email).json()['access_token']}"}
        made = [client.post("/api/v1/storefronts/bench/oidc-clients", headers=staff, json=body).json()
                for body in ({"name": "Bench backend", "scopes": ["orders:write", "accounts:read"]},
                             {"name": "Bench shop", "redirect_uris": [REDIRECT]})]
    return Shop("bench", *((m["client_id"], m["client_secret"]) for m in made), emails)


Driver = Callable[[str, float], Run]  # (app URL, deadline): one client's requests until the deadline


def _loop(app_url: str, deadline: float, step: Callable[[httpx.Client], tuple[int, float]],
          setup: Callable[[httpx.Client], None] | None = None) -> Run:
    run = Run()
    with httpx.Client(base_url=app_url, timeout=30) as client:
        if setup:
            setup(client)
        while time.perf_counter() < deadline:
            status, ms = step(client)
            run.statuses[status] += 1
            run.ok += status == 200
            run.latencies_ms.append(ms)
    return run


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, (time.perf_counter() - started) * 1000


def _client_credentials_request(app_url: str, shop: Shop) -> bytes:
    """The one token request a backend sends again and again, encoded once (client_secret_basic, RFC 6749 §2.3.1)."""
    body = urlencode({"grant_type": "client_credentials", "scope": "orders:write"}).encode()
    basic = base64.b64encode(":".join(shop.backend).encode()).decode()
    return (f"POST /s/{shop.slug}/oidc/token HTTP/1.1\r\nHost: {urlsplit(app_url).netloc}\r\n"
            f"Authorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _lean_client_credentials(shop: Shop) -> Driver:
    """A backend's client on one keep-alive connection: its request sent as encoded once, each answer read by its
    status line, headers and Content-Length body (the app answers every token request with a Content-Length)."""
    def drive(app_url: str, deadline: float) -> Run:
        run, request, address = Run(), _client_credentials_request(app_url, shop), urlsplit(app_url)
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock, \
                sock.makefile("rb") as answers:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                sock.sendall(request)
                status, length = int(answers.readline().split(b" ", 2)[1]), 0
                while (line := answers.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = answers.read(length)
                run.latencies_ms.append((time.perf_counter() - started) * 1000)
                granted = status == 200 and b'"access_token":"' in body
                run.statuses[status if status != 200 or granted else 0] += 1
                run.ok += granted
        return run
    return drive


def _buyer_session(client: httpx.Client, shop: Shop, email: str) -> dict[str, str]:
    answer = client.post(f"/api/v1/storefronts/{shop.slug}/sessions", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _code_flow(shop: Shop, email: str, exchanges: list[float]) -> tuple[Callable, Callable]:
    state: dict[str, dict[str, str]] = {}

    def setup(client: httpx.Client) -> None:
        state["session"] = _buyer_session(client, shop, email)

    def step(client: httpx.Client) -> tuple[int, float]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        started = time.perf_counter()
        answer = client.get(f"/s/{shop.slug}/oidc/authorize", headers=state["session"], params={
            "response_type": "code", "client_id": shop.rp[0], "redirect_uri": REDIRECT, "state": "s",
            "scope": "openid profile email account", "code_challenge": challenge, "code_challenge_method": "S256"})
        if answer.status_code != 302:
            return answer.status_code, (time.perf_counter() - started) * 1000
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens, ms = _timed(lambda: client.post(f"/s/{shop.slug}/oidc/token", auth=shop.rp, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}))
        exchanges.append(ms)
        return tokens.status_code, (time.perf_counter() - started) * 1000
    return setup, step


def _refreshes(shop: Shop, email: str) -> tuple[Callable, Callable]:
    state: dict[str, str] = {}

    def setup(client: httpx.Client) -> None:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        answer = client.get(f"/s/{shop.slug}/oidc/authorize", headers=_buyer_session(client, shop, email), params={
            "response_type": "code", "client_id": shop.rp[0], "redirect_uri": REDIRECT, "scope": "openid",
            "code_challenge": challenge, "code_challenge_method": "S256"})
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        state["refresh"] = client.post(f"/s/{shop.slug}/oidc/token", auth=shop.rp, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier}).json()["refresh_token"]

    def step(client: httpx.Client) -> tuple[int, float]:
        response, ms = _timed(lambda: client.post(f"/s/{shop.slug}/oidc/token", auth=shop.rp, data={
            "grant_type": "refresh_token", "refresh_token": state["refresh"]}))
        if response.status_code == 200:
            state["refresh"] = response.json()["refresh_token"]
        return response.status_code, ms
    return setup, step


def _httpx_client(setup: Callable[[httpx.Client], None] | None, step: Callable[[httpx.Client], tuple[int, float]]
                  ) -> Driver:
    return lambda app_url, deadline: _loop(app_url, deadline, step, setup)


def run_kind(app: App, target: Target, bench: Bench, drivers: list[Driver]) -> dict:
    """Every client runs its own requests back to back for bench.seconds (after its setup), each in a thread of
    this process: the app's CPU, the database's and this process's (the clients') are told apart."""
    with CpuWatch() as machine, ThreadPoolExecutor(len(drivers)) as pool:
        started, cpu_before, db_before = time.perf_counter(), app.cpu_seconds(), database_cpu_seconds(target)
        driver_before = time.process_time()
        deadline = started + bench.seconds
        runs = list(pool.map(lambda drive: drive(app.base_url, deadline), drivers))
        elapsed, server_cpu = time.perf_counter() - started, app.cpu_seconds() - cpu_before
        driver_cpu, db_cpu = time.process_time() - driver_before, database_cpu_seconds(target) - db_before
    latencies = [ms for r in runs for ms in r.latencies_ms]
    statuses = sum((r.statuses for r in runs), Counter())
    done = sum(r.ok for r in runs)
    per_grant = 1000 / max(1, done)
    return {"rate": rate(done, elapsed), "p50": percentile(latencies, 50), "cpu_ms": server_cpu * per_grant,
            "db_ms": db_cpu * per_grant, "driver_ms": driver_cpu * per_grant,
            "p95": percentile(latencies, 95), "busy": machine.busy_cores, "steal": machine.steal_cores,
            "errors": sum(n for code, n in statuses.items() if code != 200), "statuses": dict(statuses)}


def run(bench: Bench) -> None:
    print(f"  {bench.clients} concurrent clients, {bench.seconds:g} s per grant type, {WORKERS} app processes, "
          "rate limits off")
    print("  client credentials: lean clients (a keep-alive socket, the request encoded once), as backends on other "
          "machines would cost this one nothing; the other grants: httpx")
    rows = [("database", "grant", "grants/s", "app CPU ms/grant", "db CPU ms", "clients CPU ms", "p50 ms", "p95 ms",
             "machine busy", "steal", "errors")]
    for kind in bench.databases:
        with fresh_database(kind, bench.pg_url) as target, \
                running_app(target, WORKERS, ACCOUNTDESK_RATE_LIMITS_ENABLED="false") as app:
            shop = _prepare(target, app.base_url, bench.clients)
            exchanges: list[float] = []
            plans = {
                "client_credentials": [_lean_client_credentials(shop)] * bench.clients,
                "authorize + code exchange": [_httpx_client(*_code_flow(shop, email, exchanges))
                                              for email in shop.buyer_emails],
                "refresh (rotating)": [_httpx_client(*_refreshes(shop, email)) for email in shop.buyer_emails],
            }
            for grant, drivers in plans.items():
                m = run_kind(app, target, bench, drivers)
                rows.append((kind, grant, f"{m['rate']:.0f}", f"{m['cpu_ms']:.2f}", f"{m['db_ms']:.2f}",
                             f"{m['driver_ms']:.2f}", f"{m['p50']:.1f}", f"{m['p95']:.1f}", f"{m['busy']:.2f}",
                             f"{m['steal']:.2f}", str(m["errors"])))
                if m["errors"]:
                    print(f"  {kind} {grant}: answers {m['statuses']}")
                note = (f"{bench.clients} clients, p95 {m['p95']:.0f} ms, app CPU {m['cpu_ms']:.2f} ms per grant "
                        f"(database {m['db_ms']:.2f}, clients {m['driver_ms']:.2f}), machine busy {m['busy']:.2f} "
                        f"cores, steal {m['steal']:.2f}")
                if grant == "client_credentials":
                    met = "met" if m["rate"] >= TARGET_CLIENT_CREDENTIALS else "MISSED"
                    note += f"; target >= {TARGET_CLIENT_CREDENTIALS:.0f}/s: {met}"
                bench.report(NAME, kind, f"{grant} rate", m["rate"], "grants/s", note)
            if exchanges:
                bench.report(NAME, kind, "code exchange p50", percentile(exchanges, 50), "ms",
                             "the token call alone, within the authorize + exchange loop")
    print_table(rows)
