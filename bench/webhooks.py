"""Section: webhook delivery rate on PostgreSQL with 2 outbox workers (`accountdesk worker` processes) to a loopback
receiver (a bare uvicorn app in its own process answering 204).

EVENTS events are emitted beforehand (through `webhooks.events.emit`, as the services do) about SUBJECTS accounts,
to one endpoint; the rate counts from the first delivery (the workers' start-up, imports and connections, is left
out: on a loaded machine it takes longer than the deliveries) until every delivery is marked delivered. Each delivery is
signed with the Standard Webhooks library, checked against the SSRF rules (the receiver's loopback address is
allowed by ACCOUNTDESK_WEBHOOK_ALLOW_PRIVATE_TARGETS), POSTed, and logged (an attempt row): a worker claims up to 20
rows, sends them concurrently and records their outcomes in one transaction. The tables are ANALYZEd after the events
are written, as autovacuum would do within a minute (and committed: an ANALYZE rolled back leaves no statistics):
without statistics PostgreSQL plans the claim's "no earlier row of this subject is waiting" check as a scan of every
waiting row per row (about 1 s per claim at 3,000 rows instead of a few ms). CPU per delivery is given for the
workers, the receiver and PostgreSQL's backends, which all share the machine's cores.
Issue 10's target: ≥ 1,000 deliveries/s.

Run alone with `python -m bench --only webhooks --database postgresql`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from accountdesk.core.audit import Actor
from accountdesk.core.settings import get_settings
from accountdesk.webhooks import service
from accountdesk.webhooks.events import emit
from accountdesk.webhooks.models import WebhookDelivery
from bench.common import (
    CpuWatch,
    Target,
    database_cpu_seconds,
    free_port,
    fresh_database,
    process_cpu_seconds,
    rate,
)
from bench.runner import Bench

NAME = "webhooks"
TITLE = "webhooks: delivery rate, PostgreSQL, 2 outbox workers, loopback receiver"
EVENTS, SUBJECTS, WORKERS = 3000, 500, 2


def _start_receiver(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.receiver:app", "--port", str(port),
                                "--log-level", "warning", "--no-access-log"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=1)
            return process
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the receiver did not start")


def _emit(target: Target, url: str) -> None:
    with target.db.transaction() as session:
        service.create_endpoint(session, Actor.system(), get_settings().model_copy(
            update={"webhook_allow_private_targets": True}), url=url, event_types=["account.updated"],
            storefront_id=None)
    for start in range(0, EVENTS, 500):
        with target.db.transaction() as session:
            for n in range(start, min(start + 500, EVENTS)):
                account = n % SUBJECTS + 1
                emit(session, "account.updated", {"account_id": account, "number": f"A{account:06d}",
                                                  "kind": "b2b", "status": "active", "storefront_id": None},
                     storefront_id=None, subject=f"account-{account}")
    # What autovacuum does within a minute: the claim's plan needs it. Committed: an ANALYZE rolled back with its
    # transaction leaves no statistics.
    with target.db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE outbox_messages")
        conn.exec_driver_sql("ANALYZE webhook_deliveries")


def _delivered(target: Target) -> int:
    with target.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.status == "delivered"))


@dataclass
class Mark:
    """The counts and CPU figures at one moment of the run."""

    at: float
    delivered: int
    workers_cpu: float
    receiver_cpu: float
    database_cpu: float


def _mark(target: Target, workers: list[subprocess.Popen[bytes]], receiving: subprocess.Popen[bytes]) -> Mark:
    return Mark(time.monotonic(), _delivered(target), sum(process_cpu_seconds(p.pid) for p in workers),
                process_cpu_seconds(receiving.pid), database_cpu_seconds(target))


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def run(bench: Bench) -> None:
    if "postgresql" not in bench.databases:
        print("  (PostgreSQL only; skipped)")
        return
    port = free_port()
    with fresh_database("postgresql", bench.pg_url) as target:
        print(f"  emitting {EVENTS} events about {SUBJECTS} accounts …")
        _emit(target, f"http://127.0.0.1:{port}/hook")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ACCOUNTDESK_")}
        environment.update(ACCOUNTDESK_DATABASE_URL=target.url, ACCOUNTDESK_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
                           ACCOUNTDESK_OUTBOX_POLL_SECONDS="0.05", ACCOUNTDESK_MAIL_DIR=str(target.workdir / "mail"),
                           ACCOUNTDESK_SECRET_KEY=get_settings().secret_key)  # it sealed the endpoint's secret
        receiving = _start_receiver(port)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            started = time.monotonic()
            log = (target.workdir / "workers.log").open("wb")
            workers = [subprocess.Popen([sys.executable, "-m", "accountdesk.cli", "worker"], env=environment,
                                        stdout=log, stderr=subprocess.STDOUT) for _ in range(WORKERS)]
            deadline, first, last = started + max(bench.seconds * 10, 120), None, None
            with CpuWatch() as machine:
                while (last is None or last.delivered < EVENTS) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    last = _mark(target, workers, receiving)
                    if first is None and last.delivered:  # the workers have started: from here on it is delivery
                        first = last
            load = os.getloadavg()[0]
        finally:
            _stop([*workers, receiving])
        done = last.delivered if last else 0
        if done < EVENTS:
            print((target.workdir / "workers.log").read_text()[-3000:])
        if first is None or last is None or last.delivered == first.delivered:
            print("  nothing was delivered")
            return
        _report(bench, first, last, done, last.at - started, machine, load)


def _report(bench: Bench, first: Mark, last: Mark, done: int, elapsed: float, machine: CpuWatch, load: float) -> None:
    counted = last.delivered - first.delivered
    steady = rate(counted, last.at - first.at)

    def per_delivery(cpu: float) -> float:
        return cpu / counted * 1000

    workers, receiver = per_delivery(last.workers_cpu - first.workers_cpu), per_delivery(
        last.receiver_cpu - first.receiver_cpu)
    database = per_delivery(last.database_cpu - first.database_cpu)
    total = workers + receiver + database
    print(f"  {done} of {EVENTS} delivered in {elapsed:.1f} s with the workers' start-up "
          f"({rate(done, elapsed):,.0f}/s); from the first delivery on: {steady:,.0f} deliveries/s ({WORKERS} workers)")
    print(f"  CPU per delivery from the first one on: workers {workers:.2f} ms, receiver {receiver:.2f} ms, "
          f"PostgreSQL {database:.2f} ms; all three together allow at most {2000 / total:,.0f} deliveries/s on 2 idle "
          f"cores; {machine}, load average at the end {load:.1f}")
    bench.report(NAME, "postgresql", "deliveries/s, 2 workers", steady, "/s",
                 f"target ≥ 1,000; from the first delivery on, load {load:.1f}")
    bench.report(NAME, "postgresql", "worker CPU per delivery", workers, "ms", "from the first delivery on")
    bench.report(NAME, "postgresql", "worker + receiver CPU per delivery", workers + receiver, "ms", "target ≲ 1.5")
    bench.report(NAME, "postgresql", "PostgreSQL CPU per delivery", database, "ms", "its backends for this database")
