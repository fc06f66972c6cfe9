"""import — a customer file (issue 12): validated rows per second into each database, the dry run, the same file
again (everything unchanged), and peak memory of the dry run at 100k and 1M rows.

The file is made from bench.data's accounts: one to three contacts each (two on average), a billing address in
seven countries (US ones with their state), the account's number and, on 30%, its ERP code; phones in local or
international form. Every import runs in a fresh interpreter (`python -c`), so its peak RSS (the kernel's
high-water mark, reset just before the run) is its own."""

from __future__ import annotations

import csv
import json
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CpuWatch, Target, fresh_database, print_table
from bench.data import COUNTRIES, generate, slug
from bench.runner import Bench

NAME = "import"
TITLE = "import: a customer file into each database (issue 12)"
# bench.data makes addresses for a search index; an import checks them as the forms do, so the few things the forms
# would refuse are put right here: a state or province where the country's addresses need one, real-looking British
# postcodes and London numbers, Italian numbers with their leading 0.
GB_POSTCODES = ("EC1A 1BB", "SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "LS1 4AP", "G2 3DE", "EH1 1YZ", "BS1 4DJ")


def _fit(country: str, region: str, postcode: str, phone: str, rng: random.Random) -> tuple[str, str, str]:
    from accountdesk.core.validation import region_required, subdivisions

    if region_required(country):
        region = rng.choice(sorted(subdivisions(country)))
    if country == "GB":
        postcode, phone = rng.choice(GB_POSTCODES), f"+44 20 7{rng.randint(0, 9_999_999):07d}"
    if country == "IT":
        phone = phone.replace("+39 ", "+39 0", 1)
    return region, postcode, phone


def make_file(path: Path, rows: int, seed: int = 12) -> int:
    """A customer file of `rows` rows (CSV); returns the number of accounts in it."""
    from accountdesk.imports.columns import column_names

    rng = random.Random(seed)
    countries = {c.code: c for c in COUNTRIES}
    written = accounts = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        names = column_names([])
        writer.writerow(names)
        for account, address in generate(rows):
            accounts += 1
            country = countries[address["country"]]
            region, postcode, phone = _fit(country.code, "", address["postcode"], account["phone"], rng)
            base = {"account_number": account["number"], "account_name": account["name"],
                    "account_kind": account["kind"], "account_email": account["email"],
                    "account_phone": phone, "account_language": account["preferred_language"],
                    "customer_group": account["customer_group"], "payment_method": account["payment_method"],
                    "payment_terms": account["payment_terms"], "currency": account["currency"],
                    "erp_code": account["erp_code"] or "", "billing_line1": address["line1"],
                    "billing_city": address["city"], "billing_postcode": postcode,
                    "billing_country": address["country"], "billing_region": region}
            for n in range(rng.choice((1, 2, 3))):
                first, last = rng.choice(country.first_names), rng.choice(country.last_names)
                email = f"{slug(first)}.{slug(last)}.{n}@{account['number'].lower()}.example"
                cells = {**base, "contact_email": email, "contact_first_name": first, "contact_last_name": last,
                         "contact_phone": phone[:-2] + f"{rng.randint(10, 99)}",
                         "contact_role": "account_admin" if n == 0 else "buyer"}
                writer.writerow([cells.get(name, "") for name in names])
                written += 1
                if written == rows:
                    return accounts
    return accounts


def _memory_mb() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}


def child(url: str, path: str, dry_run: bool) -> None:
    """In a fresh interpreter: one import of the file (for real: its good rows), then JSON with seconds, counts and
    memory."""
    from accountdesk.core.audit import Actor
    from accountdesk.core.db import Database
    from accountdesk.core.settings import get_settings
    from accountdesk.imports import service
    from accountdesk.models import Base  # noqa: F401  (every table known to the metadata)

    db = Database(url)
    actor = Actor("system", None, "bench")
    options = service.Options(dry_run=dry_run, good_rows_only=not dry_run)
    with db.transaction() as session:
        storefront = service.storefront_by_slug(session, "bench")
    record = service.begin(db, storefront_id=storefront.id, actor=actor, file_name=Path(path).name, options=options)
    settings = get_settings().model_copy(update={"database_url": url})
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _memory_mb()["VmRSS"]
    started, cpu = time.perf_counter(), _cpu_seconds()
    report = service.run_file(db, settings, record, Path(path), options, actor)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "cpu": _cpu_seconds() - cpu, "counts": report.counts, "before_mb": before,
                      "peak_mb": _memory_mb()["VmHWM"], "imported": report.imported}))


def _cpu_seconds() -> float:
    """CPU used by this process and its finished children (the processes that check rows)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(target: Target, path: Path, dry_run: bool) -> dict:
    code = f"from bench.imports import child; child({target.url!r}, {str(path)!r}, {dry_run!r})"
    with CpuWatch() as watch:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"import child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["busy"], result["steal"] = watch.busy_cores, watch.steal_cores
    return result


def _storefront(target: Target) -> None:
    from accountdesk.storefronts.models import Storefront

    with target.db.transaction() as session:
        session.add(Storefront(slug="bench", name="Bench"))


def _line(label: str, result: dict) -> tuple[str, ...]:
    counts = result["counts"]
    return (label, f"{counts['rows']:,}", f"{result['seconds']:.1f}", f"{counts['rows'] / result['seconds']:,.0f}",
            f"{counts['rows'] / result['cpu']:,.0f}",
            f"{counts['created']:,}", f"{counts['unchanged']:,}", f"{counts['failed']:,}",
            f"{result['peak_mb']:.0f}", f"{result['busy']:.2f}")


def run_one(bench: Bench, kind: str, small: Path, big: Path | None) -> None:
    with fresh_database(kind, bench.pg_url) as target:
        _storefront(target)
        dry = measure(target, small, dry_run=True)
        real = measure(target, small, dry_run=False)
        again = measure(target, small, dry_run=False)
        table = [("run", "rows", "seconds", "rows/s", "rows/CPU-s", "created", "unchanged", "problems", "peak RSS MB",
                  "machine busy")]
        table += [_line("dry run", dry), _line("import", real), _line("same file again", again)]
        big_dry = None
        if big is not None:
            with fresh_database(kind, bench.pg_url) as empty:
                _storefront(empty)
                big_dry = measure(empty, big, dry_run=True)
            table.append(_line(f"dry run, {bench.import_big_rows:,} rows", big_dry))
        print(f"\n  {kind}:")
        print_table(table)
        for label, result in (("dry run", dry), ("import", real), ("same file again", again)):
            bench.report(NAME, kind, f"{label} rows/s", result["counts"]["rows"] / result["seconds"], "rows/s",
                         f"{result['counts']['rows']:,} rows, machine busy {result['busy']:.2f} cores")
            bench.report(NAME, kind, f"{label} rows per CPU-second", result["counts"]["rows"] / result["cpu"],
                         "rows/s", "the importing processes only (PostgreSQL's own CPU not counted)")
        bench.report(NAME, kind, "dry run peak RSS", dry["peak_mb"], "MB", f"{dry['counts']['rows']:,} rows")
        if big_dry is not None:
            bench.report(NAME, kind, "dry run peak RSS, big file", big_dry["peak_mb"], "MB",
                         f"{big_dry['counts']['rows']:,} rows, {big_dry['counts']['rows'] / big_dry['seconds']:,.0f}"
                         " rows/s")


def run(bench: Bench) -> None:
    rows = bench.import_rows
    with fresh_database("sqlite", bench.pg_url) as scratch:  # a folder for the files, removed afterwards
        small = scratch.workdir / "customers.csv"
        accounts = make_file(small, rows)
        print(f"  file: {rows:,} rows, {accounts:,} accounts, {small.stat().st_size / 1e6:.0f} MB (CSV)")
        big = None
        if bench.import_big_rows:
            big = scratch.workdir / "customers-big.csv"
            make_file(big, bench.import_big_rows)
        for kind in bench.databases:
            run_one(bench, kind, small, big)
    print("  rows/s: validated rows per second, the whole run (read, check, match, write, commit or roll back); "
          "rows/CPU-s: the same rows over the CPU the import's processes used (steadier on a busy machine); the big "
          "dry run (memory flatness) runs with --full or --import-big-rows N")
