"""The common runner: options, the list of sections, and the summary table printed at the end.

A section is a module with NAME, TITLE and `run(bench: Bench) -> None`; it prints its own details and hands
its headline figures to `bench.report(...)`. Later sections are added by appending to SECTIONS.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType

SECTIONS = ["hashing", "signin", "search", "resellers", "instant", "storefront", "efficiency", "import", "idempotency",
            "oidc", "webhooks"]
MODULES = {"import": "imports"}  # a section whose module cannot take its name (a keyword)
DATABASES = ("sqlite", "postgresql")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"
# Default sizes keep `make bench` to about 10 minutes on 2 cores; --full runs the issues' target sizes.
ACCOUNTS, FULL_ACCOUNTS = 100_000, 1_000_000  # search (issue 2: p95 at 1M accounts on PostgreSQL)
CUSTOMERS, FULL_CUSTOMERS = 100_000, 1_000_000  # resellers (issue 4: 1M customers over 1,000 resellers)
IMPORT_ROWS, FULL_IMPORT_BIG_ROWS = 100_000, 1_000_000  # import (issue 12: rows/s at 100k, flat memory to 1M)


@dataclass
class Figure:
    section: str
    database: str  # "-" when the figure does not depend on a database
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Bench:
    """What every section gets: the options and the figures reported so far (a section may read earlier ones)."""

    accounts: int
    databases: list[str]
    seconds: float
    queries: int
    http_queries: int
    clients: int
    pg_url: str
    explain: int = 0
    customers: int = CUSTOMERS
    timing_pairs: int = 200
    requests: int = 300
    import_rows: int = IMPORT_ROWS
    import_big_rows: int = 0
    figures: list[Figure] = field(default_factory=list)

    def __post_init__(self) -> None:
        # what the bench hashes and digests itself (logins it prepares) uses the settings its app processes get
        from accountdesk.core import security
        from accountdesk.core.settings import Settings

        security.bind(Settings())

    def report(self, section: str, database: str, name: str, value: float, unit: str, note: str = "") -> Figure:
        figure = Figure(section, database, name, value, unit, note)
        self.figures.append(figure)
        return figure

    def find(self, section: str, name: str, database: str = "-") -> Figure | None:
        return next((f for f in self.figures if (f.section, f.name, f.database) == (section, name, database)), None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="accountdesk benchmarks, one section per module (see --only): argon2 hashing, staff sign-in "
                    "through HTTP, account search, and what later issues add. Prints figures and ratios; asserts "
                    "nothing. bench/README.md says how to read them.")
    parser.add_argument("--accounts", type=int, metavar="N",
                        help=f"accounts generated for the search section (default {ACCOUNTS}; --full: {FULL_ACCOUNTS})")
    parser.add_argument("--customers", type=int, metavar="N",
                        help=f"reseller customers generated for the resellers section (default {CUSTOMERS}; "
                             f"--full: {FULL_CUSTOMERS})")
    parser.add_argument("--full", action="store_true",
                        help="every section at its issue's target size (--accounts and --customers 1000000, unless "
                             "given); takes far longer than the default run")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both",
                        help="which database(s) the database sections run on (default both)")
    parser.add_argument("--seconds", type=float, default=5.0, metavar="S",
                        help="duration of each timed run (default 5)")
    parser.add_argument("--only", type=_sections, metavar="SECTION[,SECTION]",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--queries", type=int, default=200, metavar="N",
                        help="searches timed in the service, per database (default 200)")
    parser.add_argument("--http-queries", type=int, default=50, metavar="N",
                        help="searches timed through HTTP, per database (default 50)")
    parser.add_argument("--clients", type=int, default=6, metavar="N",
                        help="concurrent HTTP clients for the sign-in and registration runs (default 6)")
    parser.add_argument("--timing-pairs", type=int, default=200, metavar="N",
                        help="storefront: sign-ins, registrations and new contacts with a known and with an unknown "
                             "e-mail, N of each (default 200)")
    parser.add_argument("--requests", type=int, default=300, metavar="N",
                        help="efficiency: sign-ins and registrations per database (default 300)")
    parser.add_argument("--import-rows", type=int, default=IMPORT_ROWS, metavar="N",
                        help=f"import: rows of the customer file timed on each database (default {IMPORT_ROWS})")
    parser.add_argument("--import-big-rows", type=int, metavar="N",
                        help=f"import: rows of a second file, dry-run only, to see memory stay flat (default none; "
                             f"--full: {FULL_IMPORT_BIG_ROWS})")
    parser.add_argument("--explain", type=int, default=0, metavar="N",
                        help="search on PostgreSQL: print EXPLAIN (ANALYZE, BUFFERS) of the N slowest queries")
    parser.add_argument("--pg-url", default=PG_URL, metavar="URL",
                        help=f"PostgreSQL server (no database part); a fresh database is made and dropped "
                             f"there for each section (default {PG_URL})")
    return parser.parse_args(argv)


def _sections(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SECTIONS)}")
    return names


def section(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{MODULES.get(name, name)}")


def print_summary(figures: list[Figure]) -> None:
    rows = [("section", "database", "figure", "value", "unit", "note")]
    rows += [(f.section, f.database, f.name, format_value(f.value), f.unit, f.note) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    print("\n== summary " + "=" * 70)
    for index, row in enumerate(rows):
        cells = [row[i].rjust(widths[i]) if i == 3 else row[i].ljust(widths[i]) for i in range(5)]
        print(("  ".join(cells) + "  " + row[5]).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def format_value(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    accounts = args.accounts if args.accounts is not None else FULL_ACCOUNTS if args.full else ACCOUNTS
    customers = args.customers if args.customers is not None else FULL_CUSTOMERS if args.full else CUSTOMERS
    bench = Bench(accounts=accounts, databases=list(DATABASES) if args.database == "both" else [args.database],
                  seconds=args.seconds, queries=args.queries, http_queries=args.http_queries, clients=args.clients,
                  pg_url=args.pg_url.rstrip("/"), explain=args.explain, customers=customers,
                  timing_pairs=args.timing_pairs, requests=args.requests, import_rows=args.import_rows,
                  import_big_rows=args.import_big_rows if args.import_big_rows is not None
                  else FULL_IMPORT_BIG_ROWS if args.full else 0)
    names = args.only or SECTIONS
    # A stopped run (Ctrl+C, kill) still drops its PostgreSQL database and temp files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"accountdesk bench: {platform.python_implementation()} {platform.python_version()}, "
          f"{len(os.sched_getaffinity(0))} CPUs, sections {', '.join(names)}, "
          f"databases {', '.join(bench.databases)}, {bench.accounts:,} accounts, {bench.customers:,} customers")
    started = time.perf_counter()
    for name in names:
        module = section(name)
        print(f"\n== {module.TITLE} " + "=" * max(4, 76 - len(module.TITLE)))
        module.run(bench)
    print_summary(bench.figures)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0
