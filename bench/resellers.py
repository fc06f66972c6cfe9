"""Section: a reseller's "My Customers" at scale.

1. Grid search latency with 1,000,000 customers spread over 1,000 resellers (each with its storefront; 30 % of the
   customers have a storefront user), in the service (resellers.service.grid, one session per query as a request
   would) and through HTTP (GET /api/v1/resellers/{id}/customers). Target: p95 <= 50 ms on PostgreSQL.
2. The Customers.xlsx export (resellers.service.export_rows + core.exports.write_xlsx, what the endpoint runs) of
   100,000 rows: seconds and peak memory, each run in a fresh subprocess (peak RSS from getrusage), next to a bare
   XlsxWriter constant_memory writer of the same rows from the same query in the same run. Targets: at least 0.8 of
   the bare writer's speed, peak memory within 50 MB of it, and flat from 1,000 to 100,000 to 1,000,000 rows
   (1,000,000 on PostgreSQL only, to keep the run short).
3. write_xlsx's own Python heap (tracemalloc) at 2,000 and 40,000 generated rows, no database: flat means the
   writer streams rows to disk (the test suite checks that it writes in constant-memory mode, not how much).

The default run loads 100,000 customers (`--customers`, from the common runner); the grid target's size is
`python -m bench --only resellers --customers 1000000` (or `--full`). Alone: `python -m bench.resellers
--customers 20000` for a quick, smaller run of this section.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path

import httpx
from sqlalchemy import insert, text

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
from bench.search import print_kinds

NAME = "resellers"
TITLE = "resellers: My Customers grid and Customers.xlsx export"
CUSTOMERS = 1_000_000
RESELLERS = 1_000
EXPORT_ROWS = 100_000
FLAT_ROWS = 1_000_000
CONTACT_SHARE = 0.3
BATCH = 10_000
SAMPLES = 2_000
TARGET_P95_MS = 50.0
TARGET_SPEED = 0.8
TARGET_MEMORY_MB = 50.0
WRITER_ROWS = (2_000, 40_000)  # the writer's own heap, small and large
COMMON_TERMS = ("gmbh", "berlin", "ltd", "london", "inc.", "paris")
CONTACT_COLUMNS = ("id", "account_id", "storefront_id", "first_name", "last_name", "email", "phone", "language",
                   "date_format", "role", "status", "password_hash", "created_at", "updated_at")
CUSTOMER_COLUMNS = (*ACCOUNT_COLUMNS, "monthly_run_rate")


@dataclass
class Query:
    kind: str
    reseller_id: int
    q: str = ""
    sort: str = "name"
    page: int = 1


@dataclass
class Timing:
    query: Query
    ms: float
    matches: int


# --- data ------------------------------------------------------------------------------------------------------

def rows(customers: int, resellers: int, samples: list[tuple[dict, dict]]) -> Iterator[tuple[dict, dict, dict | None]]:
    """(account, billing address, contact or None): ids 1..resellers are the resellers, each customer belongs to
    reseller 1 + (n % resellers) and its storefront; a sample of customers is kept to draw queries from."""
    rng = random.Random(4711)
    now = datetime.now(UTC)
    every = max(1, customers // SAMPLES)
    for account, address in generate(customers + resellers):
        n = account["id"]
        if n <= resellers:
            account.update(kind="reseller", name=f"{account['name']} Reseller", storefront_id=n,
                           payment_method="credit_card" if n % 3 == 0 else "cash", monthly_run_rate=Decimal(0))
            yield account, address, None
            continue
        parent = 1 + (n - resellers - 1) % resellers
        kind = "b2b" if account["kind"] == "reseller" else account["kind"]
        amount = Decimal(rng.randrange(0, 250_000)) / 100 if rng.random() < 0.6 else Decimal(0)
        account.update(kind=kind, parent_reseller_id=parent, storefront_id=parent, monthly_run_rate=amount)
        if n % every == 0:
            samples.append((account, address))
        contact = None
        if rng.random() < CONTACT_SHARE:
            first, last = account["name"].split()[0], "Buyer"
            contact = {"id": n, "account_id": n, "storefront_id": parent, "first_name": first, "last_name": last,
                       "email": account["email"].lower(), "phone": "", "language": account["preferred_language"],
                       "date_format": "DD/MM/YYYY", "role": "buyer",
                       "status": "active" if rng.random() < 0.8 else "invited", "password_hash": None,
                       "created_at": now, "updated_at": now}
            contact["password_hash"] = "bench-not-a-hash" if contact["status"] == "active" else None
        yield account, address, contact


def storefronts(resellers: int) -> list[dict]:
    now = datetime.now(UTC)
    return [{"id": n, "slug": f"reseller-{n}", "name": f"Reseller {n} Store", "created_at": now, "updated_at": now}
            for n in range(1, resellers + 1)]


def load(target: Target, customers: int, resellers: int) -> tuple[list[tuple[dict, dict]], float]:
    """Storefronts, then resellers and customers with billing addresses and contacts, as fast as the database
    allows; then each storefront is tied to its reseller. Returns samples and the seconds it took."""
    from accountdesk.storefronts.models import Storefront

    samples: list[tuple[dict, dict]] = []
    started = time.perf_counter()
    with target.db.engine.begin() as conn:
        conn.execute(insert(Storefront.__table__), storefronts(resellers))  # Core insert fills the defaults
    generated = rows(customers, resellers, samples)
    seconds_indexing = (_load_postgresql if target.kind == "postgresql" else _load_sqlite)(target, generated)
    with target.db.engine.begin() as conn:
        conn.execute(text("UPDATE storefronts SET reseller_account_id = id"))
        conn.execute(text("INSERT INTO number_sequences (name, last_value) VALUES ('account:W', :n)"),
                     {"n": customers + resellers})
    elapsed = time.perf_counter() - started
    print(f"  {target.kind}: loaded {resellers:,} resellers and {customers:,} customers (+ addresses, "
          f"{CONTACT_SHARE:.0%} with a storefront user) in {elapsed:.1f} s ({rate(customers, elapsed):,.0f}/s, of "
          f"which {seconds_indexing:.1f} s building indexes and ANALYZE)")
    return samples, elapsed


def _split(batch: list[tuple[dict, dict, dict | None]]) -> tuple[list[dict], list[dict], list[dict]]:
    return [a for a, _, _ in batch], [b for _, b, _ in batch], [c for _, _, c in batch if c]


def _load_sqlite(target: Target, generated: Iterator[tuple[dict, dict, dict | None]]) -> float:
    from accountdesk.accounts.models import Account, Address
    from accountdesk.contacts.models import Contact

    while batch := list(islice(generated, BATCH)):
        accounts, addresses, contacts = _split(batch)
        with target.db.engine.begin() as conn:
            conn.execute(insert(Account.__table__), accounts)
            conn.execute(insert(Address.__table__), addresses)
            if contacts:
                conn.execute(insert(Contact.__table__), contacts)
    started = time.perf_counter()
    with target.db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def _load_postgresql(target: Target, generated: Iterator[tuple[dict, dict, dict | None]]) -> float:
    """COPY with the secondary indexes dropped, then the same index definitions built once (as bench.search)."""
    tables = {"accounts": CUSTOMER_COLUMNS, "addresses": ADDRESS_COLUMNS, "contacts": CONTACT_COLUMNS}

    def copy_rows(cursor) -> None:
        while batch := list(islice(generated, BATCH)):
            for table, part in zip(tables, _split(batch), strict=True):
                with cursor.copy(f"COPY {table} ({', '.join(tables[table])}) FROM STDIN") as copy:
                    for row in part:
                        copy.write_row(tuple(row[c] for c in tables[table]))

    return bulk_load_postgresql(target, tuple(tables), copy_rows, vacuum=("storefronts",))


# --- grid queries ----------------------------------------------------------------------------------------------

def make_queries(samples: list[tuple[dict, dict]], count: int, seed: int = 11) -> list[Query]:
    """What reseller staff do on My Customers, each time for the reseller of a sampled customer: open the grid,
    page, sort by run rate, search for a name, e-mail, city, number or phone fragment, or a very common word."""
    rng = random.Random(seed)
    makers = (_first_page, _later_page, _by_run_rate, _name, _email, _city, _number, _phone, _common)
    queries = []
    for index in range(count):
        account, address = rng.choice(samples)
        maker = makers[index % len(makers)]
        queries.append(maker(rng, account, address))
    rng.shuffle(queries)
    return queries


def _first_page(rng: random.Random, a: dict, b: dict) -> Query:
    return Query("first page", a["parent_reseller_id"])


def _later_page(rng: random.Random, a: dict, b: dict) -> Query:
    return Query("later page", a["parent_reseller_id"], page=rng.randint(2, 30))


def _by_run_rate(rng: random.Random, a: dict, b: dict) -> Query:
    return Query("sorted by run rate", a["parent_reseller_id"], sort="-monthly_run_rate")


def _name(rng: random.Random, a: dict, b: dict) -> Query:
    words = [w for w in a["name"].split() if len(w) >= 4 and w.isalpha()] or [a["name"]]
    return Query("name fragment", a["parent_reseller_id"], rng.choice(words)[: rng.randint(4, 6)].lower())


def _email(rng: random.Random, a: dict, b: dict) -> Query:
    start = rng.randrange(0, max(1, len(a["email"]) - 8))
    return Query("e-mail fragment", a["parent_reseller_id"], a["email"][start:start + 8])


def _city(rng: random.Random, a: dict, b: dict) -> Query:
    return Query("city", a["parent_reseller_id"], b["city"].lower() if rng.random() < 0.3 else b["city"])


def _number(rng: random.Random, a: dict, b: dict) -> Query:
    return Query("number", a["parent_reseller_id"], a["number"])


def _phone(rng: random.Random, a: dict, b: dict) -> Query:
    digits = "".join(c for c in a["phone"] if c.isdigit())
    start = rng.randrange(2, len(digits) - 5)
    return Query("phone fragment", a["parent_reseller_id"], digits[start:start + 6])


def _common(rng: random.Random, a: dict, b: dict) -> Query:
    return Query("common word", a["parent_reseller_id"], rng.choice(COMMON_TERMS))


def time_service(target: Target, queries: list[Query]) -> list[Timing]:
    """Each query in its own session, as a request would: the reseller check, then one grid page of 25."""
    from accountdesk.resellers import service

    timings = []
    for query in queries:
        with target.db.sessionmaker() as session:
            started = time.perf_counter()
            reseller = service.get_reseller(session, None, query.reseller_id)
            page = service.grid(session, reseller, q=query.q, sort=query.sort, page=query.page)
            timings.append(Timing(query, (time.perf_counter() - started) * 1000, page.total))
    return timings


def time_statistics(target: Target, queries: list[Query]) -> list[float]:
    from accountdesk.resellers import service

    values = []
    for query in queries:
        with target.db.sessionmaker() as session:
            started = time.perf_counter()
            service.statistics(session, service.get_reseller(session, None, query.reseller_id))
            values.append((time.perf_counter() - started) * 1000)
    return values


def time_http(target: Target, queries: list[Query], warm: list[Query]) -> list[Timing]:
    """GET /api/v1/resellers/{id}/customers one at a time on a keep-alive connection, as the grid page does."""
    email = make_staff(target, 1, role="csr")[0]
    timings = []
    with running_app(target) as app, httpx.Client(base_url=app.base_url, timeout=60) as client:
        client.headers["Authorization"] = f"Bearer {sign_in(client, email).json()['access_token']}"
        for query in [*warm, *queries]:
            started = time.perf_counter()
            response = client.get(f"/api/v1/resellers/{query.reseller_id}/customers",
                                  params={"q": query.q, "sort": query.sort, "page": query.page})
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"GET customers {query}: {response.status_code} {response.text}")
            timings.append(Timing(query, elapsed, response.json()["total"]))
    return timings[len(warm):]


def summarize(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values)}


# --- export ----------------------------------------------------------------------------------------------------

def _memory_mb() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}


def child(url: str, reseller_id: int, mode: str, path: str) -> None:
    """Runs in a fresh interpreter: one export of the reseller's customers, then JSON with the seconds, the rows,
    the resident memory before the export and its peak during the export (the kernel's high-water mark is reset
    just before, so the imports' own peak does not hide it). Both modes import the same modules and read the same
    query."""
    import xlsxwriter

    from accountdesk.core import exports
    from accountdesk.core.db import Database
    from accountdesk.resellers import service

    db = Database(url)
    count = 0
    with db.transaction() as session:
        reseller = service.get_reseller(session, None, reseller_id)
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _memory_mb()["VmRSS"]
        started = time.perf_counter()
        if mode == "accountdesk":
            count = exports.write_xlsx(Path(path), "Customers", service.EXPORT_COLUMNS,
                                       service.export_rows(session, reseller))
        elif mode == "bare":
            workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
            sheet = workbook.add_worksheet("Customers")
            sheet.write_row(0, 0, [column.title for column in service.EXPORT_COLUMNS])
            stmt = service.export_query(reseller).execution_options(stream_results=True, yield_per=exports.BATCH)
            for count, row in enumerate(session.execute(stmt), start=1):
                sheet.write_row(count, 0, row)
            workbook.close()
        seconds = time.perf_counter() - started
    print(json.dumps({"rows": count, "seconds": seconds, "before_mb": before, "peak_mb": _memory_mb()["VmHWM"]}))


def measure(target: Target, reseller_id: int, mode: str) -> dict[str, float]:
    path = target.workdir / f"export-{mode}.xlsx"
    code = f"from bench.resellers import child; child({target.url!r}, {reseller_id}, {mode!r}, {str(path)!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"export child ({mode}) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    path.unlink(missing_ok=True)
    return result


def best_of(target: Target, reseller_id: int, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Alternating runs of our export and the bare writer; the fastest of each (peak memory of that run)."""
    ours, bare = [], []
    for _ in range(runs):
        bare.append(measure(target, reseller_id, "bare"))
        ours.append(measure(target, reseller_id, "accountdesk"))
    return min(ours, key=lambda r: r["seconds"]), min(bare, key=lambda r: r["seconds"])


def regroup(target: Target, resellers: int, first: int) -> None:
    """Give reseller 1 the first `first` customers and reseller 2 all the others (for the export sizes)."""
    with target.db.engine.begin() as conn:
        if target.kind == "postgresql":  # the export does not search; the trigram indexes only slow the UPDATE
            conn.execute(text("DROP INDEX IF EXISTS ix_accounts_search_text_trgm"))
            conn.execute(text("DROP INDEX IF EXISTS ix_accounts_search_words_trgm"))
        conn.execute(text("UPDATE accounts SET parent_reseller_id = CASE WHEN id <= :last THEN 1 ELSE 2 END "
                          "WHERE kind <> 'reseller'"), {"last": resellers + first})
    _analyze(target)


def merge_into_first(target: Target) -> None:
    with target.db.engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET parent_reseller_id = 1 WHERE parent_reseller_id = 2"))
    _analyze(target)


def _analyze(target: Target) -> None:
    with target.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE accounts" if target.kind == "postgresql" else "ANALYZE")


def _row(label: str, result: dict[str, float]) -> tuple[str, ...]:
    return (label, f"{result['rows']:,}", f"{result['seconds']:.2f}", f"{rate(result['rows'], result['seconds']):,.0f}",
            f"{result['before_mb']:.0f}", f"{result['peak_mb']:.0f}")


def run_export(bench: Bench, target: Target, customers: int, resellers: int, export_rows: int) -> None:
    small = measure(target, 3, "accountdesk")
    regroup(target, resellers, min(export_rows, customers))
    ours, bare = best_of(target, 1, runs=2)
    table = [("export", "rows", "seconds", "rows/s", "RSS before MB", "peak RSS MB"),
             _row("accountdesk, one reseller's customers", small), _row("bare XlsxWriter", bare),
             _row("accountdesk", ours)]
    kind, big = target.kind, None
    if kind == "postgresql" and customers >= FLAT_ROWS:
        merge_into_first(target)
        big, big_bare = measure(target, 1, "accountdesk"), measure(target, 1, "bare")
        table += [_row("bare XlsxWriter", big_bare), _row("accountdesk", big)]
    print(f"  {kind}, Customers.xlsx, each run in a fresh process (best of 2 at {ours['rows']:,} rows); "
          f"peak RSS is the high-water mark during the export:")
    print_table(table, indent="    ")
    speed = bare["seconds"] / ours["seconds"]
    extra = ours["peak_mb"] - bare["peak_mb"]
    memory_verdict = "met" if extra <= TARGET_MEMORY_MB else "MISSED"
    bench.report(NAME, kind, "export seconds", ours["seconds"], "s", f"{ours['rows']:,} rows")
    bench.report(NAME, kind, "export speed vs bare", speed, "x", f"bare {bare['seconds']:.2f} s; target >= "
                 f"{TARGET_SPEED}: {'met' if speed >= TARGET_SPEED else 'MISSED'}")
    bench.report(NAME, kind, "export peak RSS", ours["peak_mb"], "MB", f"bare {bare['peak_mb']:.0f} MB "
                 f"({extra:+.1f} MB); target within {TARGET_MEMORY_MB:.0f} MB: {memory_verdict}")
    bench.report(NAME, kind, "export peak RSS growth", ours["peak_mb"] - small["peak_mb"], "MB",
                 f"{small['rows']:,} -> {ours['rows']:,} rows")
    if big is not None:
        bench.report(NAME, kind, "export peak RSS growth", big["peak_mb"] - ours["peak_mb"], "MB",
                     f"{ours['rows']:,} -> {big['rows']:,} rows ({big['seconds']:.1f} s)")


def writer_traced_peak(workdir: Path, count: int) -> int:
    """Peak Python heap (tracemalloc) of core.exports.write_xlsx writing `count` generated customer rows: the
    writer's own memory, without a database or a process around it."""
    import tracemalloc

    from accountdesk.core import exports
    from accountdesk.resellers import service

    generated = ((f"W{n:06d}", f"Customer {n} GmbH", "+4930123456", "Berlin", f"c{n}@example.com",
                  Decimal(n % 997) / 10, n % 3 == 0) for n in range(count))
    tracemalloc.start()
    try:
        exports.write_xlsx(workdir / f"writer-{count}.xlsx", "Customers", service.EXPORT_COLUMNS, generated)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_writer(bench: Bench) -> None:
    """write_xlsx's heap at WRITER_ROWS and 20 times as many rows; flat means about the same peak."""
    with tempfile.TemporaryDirectory(prefix="accountdesk-bench-xlsx-") as folder:
        small, large = (writer_traced_peak(Path(folder), n) for n in WRITER_ROWS)
    print(f"  write_xlsx traced peak: {small / 2**20:.2f} MiB at {WRITER_ROWS[0]:,} rows, {large / 2**20:.2f} MiB at "
          f"{WRITER_ROWS[1]:,} rows ({large / small:.2f}x)")
    bench.report(NAME, "-", "write_xlsx traced peak growth", large / small, "x",
                 f"{WRITER_ROWS[0]:,} -> {WRITER_ROWS[1]:,} rows, {large / 2**20:.2f} MiB; flat is about 1")


# --- the section -----------------------------------------------------------------------------------------------

def run_one(bench: Bench, kind: str, customers: int, resellers: int, export_rows: int) -> None:
    with fresh_database(kind, bench.pg_url) as target:
        samples, seconds = load(target, customers, resellers)
        bench.report(NAME, kind, "bulk load", rate(customers, seconds), "customers/s", "with addresses and contacts")
        warm, queries = make_queries(samples, 20, seed=99), make_queries(samples, bench.queries)
        time_service(target, warm)
        with CpuWatch() as machine:
            service = time_service(target, queries)
        stats = summarize([t.ms for t in service])
        print(f"  {kind}, service, {len(service)} grid queries over {customers:,} customers of {resellers:,} "
              f"resellers: p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms, p99 {stats['p99']:.1f} ms "
              f"({machine})")
        print_kinds(service)
        statistics = summarize(time_statistics(target, queries[:100]))
        print(f"  {kind}, statistics (all, transacting, run rate) of one reseller: p50 {statistics['p50']:.1f} ms, "
              f"p95 {statistics['p95']:.1f} ms")
        http = time_http(target, queries[: bench.http_queries], warm) if bench.http_queries else []
        note = f"{customers:,} customers / {resellers:,} resellers"
        if kind == "postgresql":
            verdict = "met" if stats["p95"] <= TARGET_P95_MS else "MISSED"
            scale = "" if customers >= CUSTOMERS else f" (target is at {CUSTOMERS:,})"
            note += f"; target p95 <= {TARGET_P95_MS:.0f} ms: {verdict}{scale}"
        bench.report(NAME, kind, "grid service p50", stats["p50"], "ms")
        bench.report(NAME, kind, "grid service p95", stats["p95"], "ms", note)
        bench.report(NAME, kind, "statistics p95", statistics["p95"], "ms")
        if http:
            http_stats = summarize([t.ms for t in http])
            print(f"  {kind}, HTTP, {len(http)} grid queries: p50 {http_stats['p50']:.1f} ms, "
                  f"p95 {http_stats['p95']:.1f} ms, p99 {http_stats['p99']:.1f} ms")
            bench.report(NAME, kind, "grid HTTP p95", http_stats["p95"], "ms", f"{len(http)} queries")
        run_export(bench, target, customers, resellers, export_rows)


def run(bench: Bench, resellers: int = RESELLERS, export_rows: int = EXPORT_ROWS) -> None:
    customers = bench.customers
    print(f"  {customers:,} customers over {resellers:,} resellers, {bench.queries} service and {bench.http_queries} "
          f"HTTP grid queries per database (25 rows a page); Customers.xlsx of {export_rows:,} rows")
    run_writer(bench)
    for kind in bench.databases:
        run_one(bench, kind, customers, resellers, export_rows)


def main(argv: list[str] | None = None) -> int:
    """This section alone, with its own sizes."""
    from bench.runner import CUSTOMERS as DEFAULT_CUSTOMERS
    from bench.runner import PG_URL, print_summary

    parser = argparse.ArgumentParser(prog="python -m bench.resellers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS, help=f"target size: {CUSTOMERS}")
    parser.add_argument("--resellers", type=int, default=RESELLERS)
    parser.add_argument("--export-rows", type=int, default=EXPORT_ROWS)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--http-queries", type=int, default=50)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    bench = Bench(accounts=0, databases=databases, seconds=0, queries=args.queries, http_queries=args.http_queries,
                  clients=1, pg_url=args.pg_url.rstrip("/"), customers=args.customers)
    run(bench, args.resellers, args.export_rows)
    print_summary(bench.figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
