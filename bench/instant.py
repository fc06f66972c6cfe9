"""Section: ERP-verified instant registration through HTTP, with the ERP (SAP Business One over the loopback
Service Layer) answering every call in 50 ms, next to plain registration (`open` mode) in the same run.

Each run gets a fresh database and its own `accountdesk serve` (rate limits off); the loopback SAP server runs in
this process with CUSTOMERS customers, one contact e-mail each. Per database:

- plain: `--clients` threads POST /api/v1/storefronts/{slug}/registrations (a new account and login each: argon2
  hash, verification e-mail) for `--seconds`.
- instant, in two timed phases so that the mail worker's delay is not counted: (a) POST .../instant-registrations
  for every ERP e-mail; untimed, the links are read from the mail folder the app's outbox worker writes; (b+c) for
  each link, GET .../instant-registrations/{token} (the chooser) then POST it (the login: account made from the
  ERP's data, argon2 hash, signed in, 201). Each phase ends when its items are done or after `--seconds`. A
  registration goes through both, so the rate is 1 / (1/rate(a) + 1/rate(b+c)).
  It runs twice: with the ERP read cache off (every step asks the ERP, as for a registrant who opens the link after
  the cache expired) and with the default 60 s cache (steps b and c find the ERP's answer of step a).

Run alone with `python -m bench --only instant`, or `python -m bench.instant --customers 300` for a bigger ERP.
"""

from __future__ import annotations

import argparse
import email
import itertools
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx

from accountdesk.erp.demo_data import ErpDataset
from accountdesk.erp.gateway import ErpAccount, ErpContact
from accountdesk.storefronts.models import Storefront
from bench.common import App, CpuWatch, Target, fresh_database, percentile, print_table, rate, running_app
from bench.runner import Bench
from tests.fakes.sap_service_layer import SapLoopback

NAME = "instant"
TITLE = "instant: ERP-verified instant registration through HTTP (SAP, 50 ms per call)"
LATENCY = 0.05  # seconds the loopback SAP server adds to every answer
# ERP customers, one contact each. A look-up by e-mail pages through all of them (ceil(N / PAGE_SIZE) calls), and
# the loopback copies its whole data set on every page it serves, in this process, on the CPUs the app uses: one
# page keeps the 50 ms per call the dominant ERP cost. Every run registers each e-mail once, on a fresh database.
CUSTOMERS = 100
PAGE_SIZE = 100  # ACCOUNTDESK_ERP_SAP_PAGE_SIZE default: rows per Service Layer page
CACHES = (("ERP cache off", "0"), ("ERP cache 60 s", "60"))
PASSWORD = "Quiet-harbor-lantern-4711"
LINK = re.compile(r"https?://\S+/register/instant\?token=([A-Za-z0-9_\-]+)")


def erp_dataset(customers: int) -> ErpDataset:
    """Trade customers B00000.. with one active contact each (buyerN@tradeN.example)."""
    accounts = [ErpAccount(code=f"B{i:05d}", name=f"Bench Trading {i}", group="100", billing_postcode="E1 6AN",
                           city="London", country="GB", phone="", email=f"accounts@trade{i}.example",
                           payment_terms="1", price_list="1", currency="GBP", credit_limit=Decimal("1000.00"),
                           balance=Decimal("0"), active=True) for i in range(customers)]
    contacts = [ErpContact(str(i + 1), f"B{i:05d}", "Bench", f"Buyer{i}", f"buyer{i}@trade{i}.example", "", True)
                for i in range(customers)]
    return ErpDataset(accounts, contacts, [])


def storefronts(target: Target) -> tuple[str, str]:
    """(plain slug, instant slug): an `open` storefront and an `erp_verified` one."""
    with target.db.transaction() as session:
        session.add_all([Storefront(slug="plain", name="Plain Shop"),
                         Storefront(slug="trade", name="Trade Counter", registration_mode="erp_verified",
                                    default_currency="GBP")])
    return "plain", "trade"


# --- timed runs ----------------------------------------------------------------------------------------------------

@dataclass
class Run:
    ok: int = 0
    elapsed: float = 0.0
    done: list[Any] = field(default_factory=list)  # the items that succeeded
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rate(self) -> float:
        return rate(self.ok, self.elapsed)

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code not in (200, 201, 202))

    def answered(self, response: httpx.Response) -> int:
        with self.lock:
            self.statuses[response.status_code] += 1
        return response.status_code


Step = Callable[[httpx.Client, Any, Run], bool]


def timed(base_url: str, clients: int, items: Iterable[Any], seconds: float, step: Step) -> Run:
    """`clients` threads, each on its own keep-alive connection, take items (lazily: an endless iterator is fine)
    until the time is up or none is left; `step` says whether an item succeeded."""
    run, queue, queue_lock = Run(), iter(items), threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def client_loop(_: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while time.perf_counter() < deadline:
                with queue_lock:
                    item = next(queue, None)
                if item is None:
                    return
                began = time.perf_counter()
                ok = step(client, item, run)
                with run.lock:
                    run.latencies_ms.append((time.perf_counter() - began) * 1000)
                    if ok:
                        run.ok += 1
                        run.done.append(item)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    run.elapsed = time.perf_counter() - started
    return run


def registration_body(n: int, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """The registration form of the n-th plain registrant, with this e-mail and password."""
    return {"company_name": f"Plain Widgets {n}", "first_name": "Ada", "last_name": f"Plain{n}", "email": email,
            "phone": "(217) 555-0142", "password": password,
            "billing_address": {"line1": "1 Main Street", "city": "Springfield", "region": "IL",
                                "postcode": "62701", "country": "US"}}


def plain_registration(slug: str) -> Step:
    def step(client: httpx.Client, n: int, run: Run) -> bool:
        client.cookies.clear()  # every registrant is a new visitor
        response = client.post(f"/api/v1/storefronts/{slug}/registrations",
                               json=registration_body(n, f"ada{n}@plain{n}.example"))
        return run.answered(response) == 202
    return step


def ask_link(slug: str) -> Step:
    def step(client: httpx.Client, address: str, run: Run) -> bool:
        response = client.post(f"/api/v1/storefronts/{slug}/instant-registrations", json={"email": address})
        return run.answered(response) == 202
    return step


def create_login(slug: str) -> Step:
    def step(client: httpx.Client, item: tuple[str, str], run: Run) -> bool:
        url = f"/api/v1/storefronts/{slug}/instant-registrations/{item[1]}"
        offer = client.get(url)
        if run.answered(offer) != 200 or not offer.json()["accounts"]:
            return False
        made = client.post(url, json={"account_code": offer.json()["accounts"][0]["code"], "password": PASSWORD})
        return run.answered(made) == 201
    return step


def links_in(folder: Path, wanted: set[str], timeout: float = 120.0) -> dict[str, str]:
    """{e-mail: token} of the instant registration links the outbox worker wrote for these addresses."""
    found: dict[str, str] = {}
    seen: set[Path] = set()
    deadline = time.monotonic() + timeout
    while len(found) < len(wanted) and time.monotonic() < deadline:
        for path in sorted(set(folder.glob("*.eml")) - seen):
            seen.add(path)
            message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            to = str(message["To"])
            body = message.get_body(preferencelist=("plain",))
            match = LINK.search(body.get_content()) if body is not None and to in wanted else None
            if match:
                found[to] = match.group(1)
        time.sleep(0.2)
    return found


# --- one run ------------------------------------------------------------------------------------------------------

def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Phase:
    """One timed block and what it cost: server CPU, this process's CPU (the client threads and the loopback ERP)
    and ERP requests."""

    run: Run
    server_cpu: float = 0.0
    bench_cpu: float = 0.0
    erp_calls: int = 0


@contextmanager
def phase(app: App, sap: SapLoopback | None) -> Iterator[Phase]:
    taken = Phase(Run())
    server, own, calls = app.cpu_seconds(), _own_cpu(), sap.count() if sap else 0
    yield taken
    taken.server_cpu, taken.bench_cpu = app.cpu_seconds() - server, _own_cpu() - own
    taken.erp_calls = sap.count() - calls if sap else 0


@dataclass
class Result:
    """A registration run: one phase (plain) or two (instant: a, then b+c); a registration goes through all."""

    label: str
    phases: list[Phase]
    machine: CpuWatch

    @property
    def rate(self) -> float:
        rates = [p.run.rate for p in self.phases]
        return 1 / sum(1 / r for r in rates) if all(rates) else 0.0

    def per_registration(self, cost: Callable[[Phase], float]) -> float:
        return sum(cost(p) / p.run.ok if p.run.ok else math.nan for p in self.phases)

    def cores(self, cost: Callable[[Phase], float]) -> float:
        return sum(cost(p) for p in self.phases) / sum(p.run.elapsed for p in self.phases)

    @property
    def errors(self) -> dict[int, int]:
        return {code: n for p in self.phases for code, n in p.run.statuses.items() if code not in (200, 201, 202)}


def plain_run(target: Target, bench: Bench) -> Result:
    slug, _ = storefronts(target)
    with running_app(target, ACCOUNTDESK_RATE_LIMITS_ENABLED="false") as app:
        with CpuWatch() as machine, phase(app, None) as timed_phase:
            timed_phase.run = timed(app.base_url, bench.clients, itertools.count(), bench.seconds,
                                    plain_registration(slug))
    return Result("plain (open mode)", [timed_phase], machine)


def instant_run(target: Target, bench: Bench, sap: SapLoopback, addresses: list[str], label: str,
                cache: str) -> Result:
    _, slug = storefronts(target)
    env = {**sap.environ(), "ACCOUNTDESK_ERP_CACHE_SECONDS": cache, "ACCOUNTDESK_RATE_LIMITS_ENABLED": "false",
           "ACCOUNTDESK_ERP_SAP_PAGE_SIZE": str(PAGE_SIZE), "ACCOUNTDESK_OUTBOX_POLL_SECONDS": "0.2"}
    with running_app(target, **env) as app, CpuWatch() as machine:
        with phase(app, sap) as asked:
            asked.run = timed(app.base_url, bench.clients, addresses, bench.seconds, ask_link(slug))
        tokens = links_in(target.workdir / "mail", set(asked.run.done))  # untimed: the mail worker's delay
        if len(tokens) < asked.run.ok:
            print(f"  {label}: only {len(tokens)} of {asked.run.ok} links arrived in time")
        with phase(app, sap) as made:
            made.run = timed(app.base_url, bench.clients, tokens.items(), bench.seconds, create_login(slug))
    return Result(label, [asked, made], machine)


def run_one(bench: Bench, kind: str, sap: SapLoopback, addresses: list[str]) -> None:
    """Plain, then instant with each cache setting, each on a fresh database (the ERP's e-mails are reused)."""
    with fresh_database(kind, bench.pg_url) as target:
        plain = plain_run(target, bench)
    results = [plain]
    for label, cache in CACHES:
        with fresh_database(kind, bench.pg_url) as target:
            results.append(instant_run(target, bench, sap, addresses, label, cache))
    rows = [("run", "registrations/s", "x plain", "steps /s", "p95 ms", "ERP calls/reg", "server CPU ms/reg",
             "server cores", "bench cores", "machine busy", "steal", "errors")]
    for r in results:
        ratio = r.rate / plain.rate if plain.rate else math.nan
        rows.append((r.label, f"{r.rate:.1f}", f"{ratio:.2f}", " + ".join(f"{p.run.rate:.1f}" for p in r.phases),
                     " + ".join(f"{percentile(p.run.latencies_ms, 95):.0f}" for p in r.phases),
                     f"{r.per_registration(lambda p: p.erp_calls):.1f}",
                     f"{1000 * r.per_registration(lambda p: p.server_cpu):.0f}",
                     f"{r.cores(lambda p: p.server_cpu):.2f}", f"{r.cores(lambda p: p.bench_cpu):.2f}",
                     f"{r.machine.busy_cores:.2f}", f"{r.machine.steal_cores:.2f}", str(sum(r.errors.values()))))
        if r.errors:
            print(f"  {kind} {r.label}: unexpected answers {r.errors}")
        if r is plain:
            bench.report(NAME, kind, "plain registration rate", r.rate, "registrations/s",
                         f"open mode, {bench.clients} clients")
            continue
        bench.report(NAME, kind, f"instant registration rate, {r.label}", r.rate, "registrations/s",
                     f"{r.per_registration(lambda p: p.erp_calls):.1f} ERP calls of {LATENCY * 1000:.0f} ms each")
        bench.report(NAME, kind, f"instant / plain, {r.label}", ratio, "ratio", f"{bench.clients} clients each")
    print(f"  {kind}:")
    print_table(rows, indent="    ")


def run(bench: Bench, customers: int = CUSTOMERS) -> None:
    pages = -(-customers // PAGE_SIZE)
    print(f"  loopback SAP Business One: {customers:,} customers with one contact each, {LATENCY * 1000:.0f} ms per "
          f"call, {PAGE_SIZE} rows a page: a look-up by e-mail is {pages} call{'s' if pages > 1 else ''} "
          f"+ 1 per account read; {bench.clients} concurrent clients; each timed phase ends after {bench.seconds:g} s "
          f"or when its items are done (instant: at most {customers} registrations); rate limits off")
    addresses = [f"buyer{i}@trade{i}.example" for i in range(customers)]
    with SapLoopback(erp_dataset(customers), latency=LATENCY, page_size=PAGE_SIZE) as sap:
        for kind in bench.databases:
            run_one(bench, kind, sap, addresses)


def main(argv: list[str] | None = None) -> int:
    """This section alone, with its own ERP size."""
    from bench.runner import PG_URL, print_summary

    parser = argparse.ArgumentParser(prog="python -m bench.instant", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    for key in [k for k in os.environ if k.startswith("ACCOUNTDESK_ARGON2_")]:
        del os.environ[key]  # production argon2 costs only (as python -m bench does)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    bench = Bench(accounts=0, databases=databases, seconds=args.seconds, queries=0, http_queries=0,
                  clients=args.clients, pg_url=args.pg_url.rstrip("/"))
    run(bench, args.customers)
    print_summary(bench.figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
