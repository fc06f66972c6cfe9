"""Shared parts of the sections: fresh migrated databases, the real app in a subprocess, staff users, statistics."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from accountdesk.core.db import Database
from accountdesk.core.migrate import upgrade
from accountdesk.staff_admin.service import create_staff

STAFF_PASSWORD = "Quiet-harbor-lantern-4711"


@dataclass
class Target:
    """A freshly migrated database of one kind, with a scratch folder for the app's files and logs."""

    kind: str
    url: str
    db: Database
    workdir: Path


@contextmanager
def fresh_database(kind: str, pg_url: str) -> Iterator[Target]:
    """An empty database at the newest migration: an SQLite file under a temp dir, or a PostgreSQL database
    `accountdesk_bench_<pid>` that is dropped afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=f"accountdesk-bench-{kind}-"))
    name = f"accountdesk_bench_{os.getpid()}"
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        _pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        url = f"{pg_url}/{name}"
    db = None
    try:
        upgrade(url)
        db = Database(url)
        yield Target(kind, url, db, workdir)
    finally:
        if db is not None:
            db.dispose()
        if kind == "postgresql":
            _pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def _pg_admin(pg_url: str, *statements: str) -> None:
    engine = create_engine(f"{pg_url}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def make_staff(target: Target, count: int, role: str = "admin") -> list[str]:
    """`count` staff users (one hash each, with the production argon2 parameters); returns their e-mails."""
    emails = [f"bench-staff-{i}@example.com" for i in range(count)]
    with target.db.transaction() as session:
        for email in emails:
            create_staff(session, email, STAFF_PASSWORD, role, name="Bench staff")
    return emails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    base_url: str
    process: subprocess.Popen[bytes]
    workers: int = 1

    def pids(self) -> list[int]:
        """The server's processes: `accountdesk serve` and, with several workers, the uvicorn worker processes
        it started (every descendant, from the parent ids in /proc)."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue  # the process ended while we looked
        tree = [self.process.pid]
        for pid in tree:
            tree += [child for child, parent in parents.items() if parent == pid]
        return tree

    def cpu_seconds(self) -> float:
        """User + system CPU all the server's processes have used so far (from /proc/<pid>/stat)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    @property
    def processes(self) -> int:
        """How many processes the server runs once started: with several workers, uvicorn's supervisor, the
        workers and multiprocessing's resource tracker."""
        return 1 if self.workers == 1 else self.workers + 2

    def cores(self) -> int:
        """CPUs the server may run on."""
        return len(os.sched_getaffinity(self.process.pid))


@contextmanager
def running_app(target: Target, workers: int = 1, **env: str) -> Iterator[App]:
    """`accountdesk serve` (uvicorn, `workers` app processes, each with its outbox worker thread) on a loopback
    port, against the target database; extra ACCOUNTDESK_* settings come as keyword arguments."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ACCOUNTDESK_")}
    environment.update(ACCOUNTDESK_DATABASE_URL=target.url, ACCOUNTDESK_BASE_URL=base_url,
                       ACCOUNTDESK_MAIL_DIR=str(target.workdir / "mail"), **env)
    log = (target.workdir / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "accountdesk.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port), "--workers", str(workers)], env=environment, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        _wait_healthy(base_url, process, target.workdir / "server.log")
        yield App(base_url, process, workers)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


STARTUP_SECONDS = 120  # a machine shared with other work may take that long to import and start the app


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app did not answer /healthz within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


def sign_in(client: httpx.Client, email: str) -> httpx.Response:
    return client.post("/api/v1/staff/tokens", json={"email": email, "password": STAFF_PASSWORD})


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (from /proc/<pid>/stat); 0 once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(target: Target) -> float:
    """CPU the PostgreSQL backends connected to the target database have used so far (0 on SQLite): the database's
    share of the work, which runs on the same cores. A backend that has closed its connection no longer counts."""
    if target.kind != "postgresql":
        return 0.0
    with target.db.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        return sum(process_cpu_seconds(pid) for pid in pids)


class CpuWatch:
    """What the whole machine did over a block (from /proc/stat): cores kept busy by every process, and cores
    the hypervisor took away (steal). Compare with the cores the benchmark itself used to tell a quiet run from
    one that shared the CPUs."""

    def __enter__(self) -> CpuWatch:
        self._start = _cpu_jiffies()
        self.busy_cores = self.steal_cores = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        busy, steal, total = (b - a for a, b in zip(self._start, _cpu_jiffies(), strict=True))
        cores = os.cpu_count() or 1
        self.busy_cores = cores * busy / max(1, total)
        self.steal_cores = cores * steal / max(1, total)

    def __str__(self) -> str:
        return f"machine busy {self.busy_cores:.2f} cores, steal {self.steal_cores:.2f}"


def _cpu_jiffies() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies over all CPUs; guest time is already inside user time."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return user + nice + system + irq + softirq, steal, user + nice + system + idle + iowait + irq + softirq + steal


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 200 values is the 190th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def print_table(rows: list[tuple[str, ...]], indent: str = "  ") -> None:
    """A left-aligned text table; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(indent + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if index == 0:
            print(indent + "  ".join("-" * w for w in widths))


def bulk_load_postgresql(target: Target, tables: Sequence[str], copy_rows: Callable[[object], None], *,
                         vacuum: Sequence[str] = (), checkpoint: bool = False) -> float:
    """The standard bulk load: drop the secondary indexes of `tables`, let `copy_rows(cursor)` COPY the rows,
    move the id sequences past them, rebuild the very same index definitions once, VACUUM ANALYZE. Returns the
    seconds spent indexing and analysing (building a trigram GIN index once is far cheaper than row by row)."""
    import psycopg

    raw = target.db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        indexes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            (list(tables),)).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cursor:
            copy_rows(cursor)
        for table in tables:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        conn.commit()
        conn.autocommit = True
        for table in (*tables, *vacuum):
            conn.execute(f"VACUUM ANALYZE {table}")
        if checkpoint:
            try:  # flush the pages the load dirtied, or the first queries pay for writing them out
                conn.execute("CHECKPOINT")
            except psycopg.errors.InsufficientPrivilege:
                print("  (no privilege for CHECKPOINT: the first queries may write out dirty pages)")
        conn.autocommit = False
        return time.perf_counter() - started
    finally:
        raw.close()
