"""Section 3: account search latency over N generated accounts, in the service (accounts.service.search, first
page sorted by name) and through HTTP (GET /api/v1/accounts?q=...)."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import httpx
from sqlalchemy import Table, insert, text

from bench.common import (
    CpuWatch,
    Target,
    bulk_load_postgresql,
    fresh_database,
    make_staff,
    percentile,
    print_table,
    rate,
    running_app,
    sign_in,
)
from bench.data import ACCOUNT_COLUMNS, ADDRESS_COLUMNS, generate
from bench.runner import Bench

NAME = "search"
TITLE = "search: account search latency"
BATCH = 10_000
SAMPLES = 2_000
TARGET_P95_MS = 50.0
TARGET_ACCOUNTS = 1_000_000
# Terms that match a large share of the generated accounts (legal forms, the biggest cities, a frequent name).
COMMON_TERMS = ("gmbh", "berlin", "ltd", "london", "müller", "info", "paris", "inc.")


@dataclass
class Query:
    kind: str
    q: str


@dataclass
class Timing:
    query: Query
    ms: float
    matches: int


# --- loading -------------------------------------------------------------------------------------------------

def load(target: Target, count: int) -> tuple[list[tuple[dict, dict]], float]:
    """Insert `count` accounts with a billing address each, as fast as the database allows; returns a sample of
    the generated rows to draw queries from, and the seconds it took."""
    every = max(1, count // SAMPLES)
    samples: list[tuple[dict, dict]] = []

    def rows() -> Iterator[tuple[dict, dict]]:
        for pair in generate(count):
            if pair[0]["id"] % every == 0:
                samples.append(pair)
            yield pair

    started = time.perf_counter()
    if target.kind == "postgresql":
        seconds_indexing = _load_postgresql(target, rows())
    else:
        seconds_indexing = _load_sqlite(target, rows())
    with target.db.transaction() as session:
        session.execute(text("INSERT INTO number_sequences (name, last_value) VALUES ('account:W', :n)"),
                        {"n": count})
    elapsed = time.perf_counter() - started
    print(f"  {target.kind}: loaded {count:,} accounts + billing addresses in {elapsed:.1f} s "
          f"({rate(count, elapsed):,.0f}/s, of which {seconds_indexing:.1f} s building indexes and ANALYZE)")
    return samples, elapsed


def _load_sqlite(target: Target, pairs: Iterator[tuple[dict, dict]]) -> float:
    from accountdesk.accounts.models import Account, Address

    while batch := list(islice(pairs, BATCH)):
        with target.db.engine.begin() as conn:
            conn.execute(insert(Account.__table__), [a for a, _ in batch])
            conn.execute(insert(Address.__table__), [b for _, b in batch])
    started = time.perf_counter()
    with target.db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def _load_postgresql(target: Target, pairs: Iterator[tuple[dict, dict]]) -> float:
    """COPY with the secondary indexes dropped, then the very same index definitions recreated."""
    from accountdesk.accounts.models import Account, Address

    accounts_sql, accounts_extra = _copy_statement(Account.__table__, ACCOUNT_COLUMNS)
    addresses_sql, addresses_extra = _copy_statement(Address.__table__, ADDRESS_COLUMNS)

    def copy_rows(cursor) -> None:
        while batch := list(islice(pairs, BATCH)):
            with cursor.copy(accounts_sql) as copy:
                for account, _ in batch:
                    copy.write_row((*account.values(), *accounts_extra))
            with cursor.copy(addresses_sql) as copy:
                for _, address in batch:
                    copy.write_row((*address.values(), *addresses_extra))

    return bulk_load_postgresql(target, ("accounts", "addresses"), copy_rows, checkpoint=True)


def _copy_statement(table: Table, generated: tuple[str, ...]) -> tuple[str, tuple]:
    """COPY of the generated columns plus any column added later with a Python-side scalar default (COPY does
    not apply those; server defaults apply by themselves)."""
    extra = {c.name: c.default.arg for c in table.columns
             if c.name not in generated and c.default is not None and c.default.is_scalar}
    return f"COPY {table.name} ({', '.join((*generated, *extra))}) FROM STDIN", tuple(extra.values())


# --- queries -------------------------------------------------------------------------------------------------

def make_queries(samples: list[tuple[dict, dict]], count: int, seed: int = 7) -> list[Query]:
    """A realistic mix, in shuffled order: what staff type into the search box."""
    rng = random.Random(seed)
    makers = (_name_fragment, _email_fragment, _city, _number, _phone_fragment, _two_words, _rare, _common)
    queries = [Query(maker.__name__.lstrip("_"), maker(rng, rng.choice(samples)))
               for _, maker in zip(range(count), _cycle(makers), strict=False)]
    rng.shuffle(queries)
    return queries


def _cycle(items: tuple) -> Iterator:
    while True:
        yield from items


def _words(text_: str) -> list[str]:
    return [w for w in text_.replace("&", " ").split() if len(w) >= 4 and w.isalpha()]


def _name_fragment(rng: random.Random, pair: tuple[dict, dict]) -> str:
    word = rng.choice(_words(pair[0]["name"]) or [pair[0]["name"]])
    return word[: rng.randint(4, 6)].lower()


def _email_fragment(rng: random.Random, pair: tuple[dict, dict]) -> str:
    email = pair[0]["email"]
    size = rng.randint(6, 10)
    start = rng.randrange(0, max(1, len(email) - size))
    return email[start:start + size]


def _city(rng: random.Random, pair: tuple[dict, dict]) -> str:
    return pair[1]["city"]


def _number(rng: random.Random, pair: tuple[dict, dict]) -> str:
    return pair[0]["number"]


def _phone_fragment(rng: random.Random, pair: tuple[dict, dict]) -> str:
    digits = "".join(c for c in pair[0]["phone"] if c.isdigit())
    start = rng.randrange(2, len(digits) - 5)
    return digits[start:start + 6]


def _two_words(rng: random.Random, pair: tuple[dict, dict]) -> str:
    return f"{rng.choice(_words(pair[0]['name']) or [pair[0]['number']])} {pair[1]['city']}"


def _rare(rng: random.Random, pair: tuple[dict, dict]) -> str:
    return pair[0]["erp_code"] or pair[0]["email"]


def _common(rng: random.Random, pair: tuple[dict, dict]) -> str:
    return rng.choice(COMMON_TERMS)


# --- timing --------------------------------------------------------------------------------------------------

def time_service(target: Target, queries: list[Query]) -> list[Timing]:
    """Each query in its own session, as a request would: search(session, None, q=...), first page by name."""
    from accountdesk.accounts.service import search

    timings = []
    for query in queries:
        with target.db.sessionmaker() as session:
            started = time.perf_counter()
            result = search(session, None, q=query.q)
            timings.append(Timing(query, (time.perf_counter() - started) * 1000, result.total))
    return timings


def time_http(target: Target, queries: list[Query], warm: list[Query]) -> tuple[list[Timing], CpuWatch]:
    """GET /api/v1/accounts?q=... one at a time on a keep-alive connection, as the console's search box does."""
    email = make_staff(target, 1, role="csr")[0]
    timings = []
    with running_app(target) as app, httpx.Client(base_url=app.base_url, timeout=60) as client:
        token = sign_in(client, email).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        for query in warm:
            client.get("/api/v1/accounts", params={"q": query.q})
        with CpuWatch() as machine:
            for query in queries:
                started = time.perf_counter()
                response = client.get("/api/v1/accounts", params={"q": query.q})
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"GET /api/v1/accounts?q={query.q!r}: {response.status_code} {response.text}")
                timings.append(Timing(query, elapsed, response.json()["total"]))
    return timings, machine


def summarize(timings: list[Timing]) -> dict[str, float]:
    values = [t.ms for t in timings]
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values)}


def print_kinds(timings: list[Timing]) -> None:
    by_kind: dict[str, list[Timing]] = defaultdict(list)
    for timing in timings:
        by_kind[timing.query.kind].append(timing)
    rows = [("query kind", "n", "p50 ms", "p95 ms", "max ms", "median matches", "example")]
    for kind, group in by_kind.items():
        stats = summarize(group)
        matches = sorted(t.matches for t in group)[len(group) // 2]
        rows.append((kind, str(len(group)), f"{stats['p50']:.1f}", f"{stats['p95']:.1f}", f"{stats['max']:.1f}",
                     f"{matches:,}", repr(group[0].query.q)))
    print_table(rows, indent="    ")


def print_slowest(timings: list[Timing], count: int = 5) -> None:
    print("    slowest: " + "; ".join(f"{t.ms:.0f} ms {t.query.kind} {t.query.q!r} ({t.matches:,} matches)"
                                      for t in sorted(timings, key=lambda t: -t.ms)[:count]))


def explain(target: Target, query: Query) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every query that search() sends for this query (SELECT or WITH: the matches
    are collected in a CTE, and a walk's plan settings are set by one), captured as it runs and replayed in order."""
    from sqlalchemy import event

    from accountdesk.accounts.service import search

    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, parameters))

    event.listen(target.db.engine, "before_cursor_execute", capture)
    try:
        with target.db.sessionmaker() as session:
            search(session, None, q=query.q)
    finally:
        event.remove(target.db.engine, "before_cursor_execute", capture)
    raw = target.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        print(f"    EXPLAIN for {query.kind} {query.q!r}:")
        for statement, parameters in sent:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            lines = [row[0] for row in cursor.fetchall()]
            print("      " + " ".join(statement.split())[:150])
            for line in lines:
                if any(word in line for word in ("Scan", "Sort", "Limit", "Removed", "Buffers", "Execution", "rows=")):
                    print("        " + line.rstrip()[:150])
        raw.rollback()
    finally:
        raw.close()


@dataclass
class Measured:
    load_rate: float
    service: list[Timing]
    service_machine: CpuWatch
    http: list[Timing]
    http_machine: CpuWatch | None


def measure(bench: Bench, kind: str) -> Measured:
    with fresh_database(kind, bench.pg_url) as target:
        samples, seconds = load(target, bench.accounts)
        warm = make_queries(samples, 10, seed=99)
        queries = make_queries(samples, bench.queries)
        time_service(target, warm)
        with CpuWatch() as machine:
            service = time_service(target, queries)
        if bench.explain and kind == "postgresql":
            for timing in sorted(service, key=lambda t: -t.ms)[: bench.explain]:
                explain(target, timing.query)
        http, http_machine = ([], None)
        if bench.http_queries:
            http, http_machine = time_http(target, queries[: bench.http_queries], warm)
    return Measured(rate(bench.accounts, seconds), service, machine, http, http_machine)


def show(kind: str, label: str, timings: list[Timing], machine: CpuWatch | None) -> dict[str, float]:
    stats = summarize(timings)
    print(f"  {kind}, {label}, {len(timings)} queries: p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms, "
          f"p99 {stats['p99']:.1f} ms ({machine})")
    print_kinds(timings)
    print_slowest(timings)
    return stats


def run_one(bench: Bench, kind: str) -> None:
    m = measure(bench, kind)
    bench.report(NAME, kind, "bulk load", m.load_rate, "accounts/s", "generate + insert + index + ANALYZE")
    note = f"{bench.accounts:,} accounts"
    stats = show(kind, "service", m.service, m.service_machine)
    if kind == "postgresql":
        verdict = "met" if stats["p95"] <= TARGET_P95_MS else "MISSED"
        scale = "" if bench.accounts >= TARGET_ACCOUNTS else f" (the target is set at {TARGET_ACCOUNTS:,})"
        note += f"; target p95 <= {TARGET_P95_MS:.0f} ms: {verdict}{scale}"
    for name in ("p50", "p95", "p99"):
        bench.report(NAME, kind, f"service {name}", stats[name], "ms", note if name == "p95" else "")
    if m.http:
        http_stats = show(kind, "HTTP", m.http, m.http_machine)
        for name in ("p50", "p95", "p99"):
            bench.report(NAME, kind, f"HTTP {name}", http_stats[name], "ms",
                         f"{len(m.http)} queries" if name == "p95" else "")


def run(bench: Bench) -> None:
    print(f"  {bench.accounts:,} generated accounts, {bench.queries} service queries and {bench.http_queries} "
          f"HTTP queries per database, first page (25) sorted by name")
    for kind in bench.databases:
        run_one(bench, kind)
