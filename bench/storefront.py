"""Section: storefront self-registration and sign-in through HTTP (issue 3), against the real app with the
production argon2 costs and rate limits off, compared with the bare one-core hash and verify rates of the same run.

Per database, on a fresh database with one `open` storefront and its own `accountdesk serve`:

- sign-in: CONTACTS active logins are inserted directly (one account each, all with one precomputed argon2 hash);
  `--clients` threads POST /api/v1/storefronts/{slug}/sessions for `--seconds`, each sign-in for the next login
  in turn (a verify, a session row, 201 with a bearer token). Ratio to the one-core verify rate.
- known/unknown e-mail timing, each on one connection, sequential, `--timing-pairs` pairs interleaved (a known
  e-mail, then an unknown one, then a known one...); the medians and their difference:
  - sign-in: a known e-mail with a wrong password, an unknown e-mail (both 401);
  - registration: the e-mail of an existing login (a wrong password: what someone probing e-mails sends), a fresh
    e-mail (both 202);
  - new contact for an existing account: after an untimed claim, the e-mail of the account's existing contact, a
    fresh e-mail (both 202).
- registration: `--clients` threads POST /api/v1/storefronts/{slug}/registrations (`open` mode with the default
  policy: a new account and its first contact, an argon2 hash, the verification e-mail queued, not signed in) with
  distinct e-mails for `--seconds`. Ratio to the one-core hash rate. It runs last, so that the e-mails it queues
  (the outbox worker writes them in the server process) do not cost the other runs anything.

Run alone with `python -m bench --only storefront`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import httpx

from bench.common import App, CpuWatch, Target, fresh_database, percentile, print_table, running_app
from bench.hashing import PASSWORD, hash_rate, verify_rate
from bench.instant import Phase, Run, phase, plain_registration, registration_body, timed
from bench.runner import Bench

NAME = "storefront"
TITLE = "storefront: registration and sign-in through HTTP, known/unknown e-mail timing"
SLUG = "shop"
CONTACTS = 500
WRONG_PASSWORD = "Wrong-harbor-lantern-0000"
WARM_UP_PAIRS = 10
TARGET_RATIO = 0.8
TARGET_GAP_MS = {"sign-in": 10.0, "registration": 5.0, "new contact": 5.0}  # issue 3; issue 8 hole 5
POSTCODE = "62701"
INVOICE = "INV-1"


# --- data ------------------------------------------------------------------------------------------------------

def prepare(target: Target, count: int) -> list[str]:
    """The `open` storefront and `count` active logins (one account each) sharing one precomputed argon2 hash
    with the production parameters; returns their e-mails."""
    from accountdesk.accounts.models import Account
    from accountdesk.contacts.models import Contact, ContactStatus
    from accountdesk.core.security import hash_password
    from accountdesk.storefronts.models import Storefront

    stored = hash_password(PASSWORD)
    emails = [f"buyer{n}@shop{n}.example" for n in range(count)]
    with target.db.transaction() as session:
        storefront = Storefront(slug=SLUG, name="Bench Shop")
        session.add(storefront)
        session.flush()
        accounts = [Account(number=f"B{n:06d}", name=f"Bench Buyer {n} Ltd", storefront_id=storefront.id,
                            email=email) for n, email in enumerate(emails)]
        session.add_all(accounts)
        session.flush()
        session.add_all([Contact(account_id=account.id, storefront_id=storefront.id, first_name="Pat",
                                 last_name=f"Buyer{n}", email=email, status=ContactStatus.active,
                                 password_hash=stored)
                         for n, (account, email) in enumerate(zip(accounts, emails, strict=True))])
    return emails


def claimable(target: Target, count: int) -> list[tuple[str, str]]:
    """`count` accounts on the storefront that a visitor can prove (billing postcode, an invoice of today), each
    with one contact; returns (account number, that contact's e-mail)."""
    from accountdesk.accounts.models import Account, Address, Invoice
    from accountdesk.contacts.models import Contact, ContactStatus
    from accountdesk.core.security import hash_password
    from accountdesk.storefronts.models import Storefront

    stored = hash_password(PASSWORD)
    found = [(f"C{n:06d}", f"colleague{n}@claim{n}.example") for n in range(count)]
    with target.db.transaction() as session:
        storefront = session.query(Storefront).filter_by(slug=SLUG).one()
        for n, (number, email) in enumerate(found):
            account = Account(number=number, name=f"Claimable {n} Ltd", storefront_id=storefront.id, email=email,
                              addresses=[Address(line1="1 Main Street", city="Springfield", region="US-IL",
                                                 postcode=POSTCODE, country="US", is_billing=True)])
            session.add(account)
            session.flush()
            session.add_all([Invoice(account_id=account.id, number=INVOICE, issued_on=date.today()),
                             Contact(account_id=account.id, storefront_id=storefront.id, first_name="Pat",
                                     last_name=f"Colleague{n}", email=email, status=ContactStatus.active,
                                     password_hash=stored)])
    return found


# --- steps -----------------------------------------------------------------------------------------------------

def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(f"/api/v1/storefronts/{SLUG}/sessions", json={"email": email, "password": password})


def signing_in(client: httpx.Client, email: str, run: Run) -> bool:
    return run.answered(sign_in(client, email)) == 201


@dataclass
class Timing:
    what: str
    expected: int  # the one status every request of the run should get
    known_ms: list[float] = field(default_factory=list)
    unknown_ms: list[float] = field(default_factory=list)
    unexpected: Counter[int] = field(default_factory=Counter)

    @property
    def gap_ms(self) -> float:
        return percentile(self.known_ms, 50) - percentile(self.unknown_ms, 50)

    @property
    def target_ms(self) -> float:
        return TARGET_GAP_MS[self.what]


# Prepares (untimed) the request of a pair for a known e-mail or not, the pair's index; returns the call to time.
Probe = Callable[[httpx.Client, bool, int], Callable[[], httpx.Response]]


def interleaved(app: App, what: str, expected: int, pairs: int, probe: Probe) -> Timing:
    """Sequential requests on one keep-alive connection, alternating a known e-mail and an unknown one, after a
    few untimed pairs (the first unknown e-mail of a sign-in makes the dummy hash)."""
    timing = Timing(what, expected)
    with httpx.Client(base_url=app.base_url, timeout=30) as client:
        for index in range(WARM_UP_PAIRS + pairs):
            for known in (True, False):
                send = probe(client, known, index)
                started = time.perf_counter()
                response = send()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != expected:
                    timing.unexpected[response.status_code] += 1
                if index >= WARM_UP_PAIRS:
                    (timing.known_ms if known else timing.unknown_ms).append(elapsed)
    return timing


def sign_in_probe(emails: list[str]) -> Probe:
    def probe(client: httpx.Client, known: bool, index: int) -> Callable[[], httpx.Response]:
        email = emails[index % len(emails)] if known else f"nobody{index}@nowhere.example"
        return lambda: sign_in(client, email, WRONG_PASSWORD)
    return probe


def registration_probe(emails: list[str]) -> Probe:
    def probe(client: httpx.Client, known: bool, index: int) -> Callable[[], httpx.Response]:
        client.cookies.clear()
        email = emails[index % len(emails)] if known else f"fresh{index}@new{index}.example"
        body = registration_body(index, email, WRONG_PASSWORD)
        return lambda: client.post(f"/api/v1/storefronts/{SLUG}/registrations", json=body)
    return probe


def new_contact_probe(accounts: list[tuple[str, str]]) -> Probe:
    def probe(client: httpx.Client, known: bool, index: int) -> Callable[[], httpx.Response]:
        client.cookies.clear()
        number, existing = accounts[index % len(accounts)]
        proof = client.post(f"/api/v1/storefronts/{SLUG}/account-claims",
                            json={"account_number": number, "postcode": POSTCODE, "invoice_number": INVOICE})
        if proof.status_code != 200:
            raise RuntimeError(f"claim failed: {proof.status_code} {proof.text}")
        url = f"/api/v1/storefronts/{SLUG}/account-claims/{proof.json()['claim_token']}/contacts"
        body = {"first_name": "Pat", "last_name": f"New{index}", "phone": "(217) 555-0142",
                "email": existing if known else f"joiner{index}@claim{index}.example", "password": WRONG_PASSWORD}
        return lambda: client.post(url, json=body)
    return probe


# --- the section -----------------------------------------------------------------------------------------------

@dataclass
class Measured:
    signin: Phase
    signin_machine: CpuWatch
    timings: list[Timing]
    registration: Phase
    registration_machine: CpuWatch


def measure(target: Target, bench: Bench) -> Measured:
    emails = prepare(target, max(CONTACTS, bench.timing_pairs))
    accounts = claimable(target, WARM_UP_PAIRS + bench.timing_pairs)
    with running_app(target, ACCOUNTDESK_RATE_LIMITS_ENABLED="false") as app:
        with httpx.Client(base_url=app.base_url, timeout=30) as warm:
            for email in emails[: bench.clients]:
                if (response := sign_in(warm, email)).status_code != 201:
                    raise RuntimeError(f"sign-in failed: {response.status_code} {response.text}")
        with CpuWatch() as signin_machine, phase(app, None) as signin:
            signin.run = timed(app.base_url, bench.clients, itertools.cycle(emails), bench.seconds, signing_in)
        timings = [interleaved(app, "sign-in", 401, bench.timing_pairs, sign_in_probe(emails)),
                   interleaved(app, "registration", 202, bench.timing_pairs, registration_probe(emails)),
                   interleaved(app, "new contact", 202, bench.timing_pairs, new_contact_probe(accounts))]
        with CpuWatch() as registration_machine, phase(app, None) as registration:
            registration.run = timed(app.base_url, bench.clients, itertools.count(), bench.seconds,
                                     plain_registration(SLUG))
    return Measured(signin, signin_machine, timings, registration, registration_machine)


def baseline(bench: Bench) -> tuple[float, float]:
    """The one-core hash and verify rates from the hashing section, or measured here with its functions."""
    hashes, verifies = bench.find("hashing", "hash rate"), bench.find("hashing", "verify rate")
    if hashes is not None and verifies is not None:
        return hashes.value, verifies.value
    print(f"  (hashing did not run: measuring the one-core hash and verify rates, {bench.seconds:g} s each)")
    return hash_rate(bench.seconds)[0], verify_rate(bench.seconds)


def _row(kind: str, label: str, taken: Phase, machine: CpuWatch, base: float) -> tuple[str, ...]:
    run = taken.run
    return (f"{kind} {label}", f"{run.rate:.1f}", f"{run.rate / base:.2f}",
            f"{run.ok / taken.server_cpu:.1f}" if taken.server_cpu else "-",
            f"{percentile(run.latencies_ms, 50):.0f}", f"{percentile(run.latencies_ms, 95):.0f}",
            f"{taken.server_cpu / run.elapsed:.2f}", f"{taken.bench_cpu / run.elapsed:.2f}",
            f"{machine.busy_cores:.2f}", f"{machine.steal_cores:.2f}", str(run.errors))


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(bench: Bench, kind: str, m: Measured, hashes: float, verifies: float) -> None:
    for label, taken, unit, base, base_name in (
            ("registration", m.registration, "registrations/s", hashes, "hash"),
            ("sign-in", m.signin, "sign-ins/s", verifies, "verify")):
        ratio = taken.run.rate / base
        bench.report(NAME, kind, f"{label} rate", taken.run.rate, unit,
                     f"{bench.clients} clients, p95 {percentile(taken.run.latencies_ms, 95):.0f} ms")
        bench.report(NAME, kind, f"{label} / 1-core {base_name}", ratio, "ratio",
                     f"target >= {TARGET_RATIO}: {_verdict(ratio >= TARGET_RATIO)}")
        if taken.run.errors:
            print(f"  {kind} {label}: unexpected answers {dict(taken.run.statuses)}")
    for t in m.timings:
        prefix = "" if t.what == "sign-in" else f"{t.what}: "
        bench.report(NAME, kind, f"{prefix}known e-mail, wrong password p50", percentile(t.known_ms, 50), "ms",
                     f"{len(t.known_ms)} requests, interleaved")
        bench.report(NAME, kind, f"{prefix}unknown e-mail p50", percentile(t.unknown_ms, 50), "ms",
                     f"{len(t.unknown_ms)} requests")
        bench.report(NAME, kind, f"{prefix}known - unknown p50", t.gap_ms, "ms",
                     f"target |difference| < {t.target_ms:.0f} ms: {_verdict(abs(t.gap_ms) < t.target_ms)}")
        if t.unexpected:
            print(f"  {kind} {t.what} timing: answers other than {t.expected} {dict(t.unexpected)}")


def run(bench: Bench) -> None:
    hashes, verifies = baseline(bench)
    print(f"  one `open` storefront, {bench.clients} concurrent clients, {bench.seconds:g} s per run, rate limits "
          f"off; one-core hash {hashes:.1f}/s, verify {verifies:.1f}/s; timing: {bench.timing_pairs} known + "
          f"{bench.timing_pairs} unknown e-mails per kind of request, one connection, interleaved")
    throughput = [("run", "per s", "x 1-core", "per server core", "p50 ms", "p95 ms", "server cores",
                   "bench cores", "machine busy", "steal", "errors")]
    timings = [("database", "request", "known p50 ms", "unknown p50 ms", "difference ms", "known p95 ms",
                "unknown p95 ms", "known mean ms", "unknown mean ms")]
    for kind in bench.databases:
        with fresh_database(kind, bench.pg_url) as target:
            m = measure(target, bench)
        throughput += [_row(kind, "registration (x hash)", m.registration, m.registration_machine, hashes),
                       _row(kind, "sign-in (x verify)", m.signin, m.signin_machine, verifies)]
        timings += [(kind, t.what, f"{percentile(t.known_ms, 50):.2f}", f"{percentile(t.unknown_ms, 50):.2f}",
                     f"{t.gap_ms:+.2f}", f"{percentile(t.known_ms, 95):.2f}", f"{percentile(t.unknown_ms, 95):.2f}",
                     f"{_mean(t.known_ms):.2f}", f"{_mean(t.unknown_ms):.2f}") for t in m.timings]
        report(bench, kind, m, hashes, verifies)
    print_table(throughput)
    print()
    print_table(timings)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
