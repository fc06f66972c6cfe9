"""Section: webhook delivery rate on PostgreSQL with 2 outbox workers (`accountdesk worker` processes) to a loopback
receiver (a bare uvicorn app in its own process answering 204).

EVENTS events are emitted beforehand (through `webhooks.events.emit`, as the services do) about SUBJECTS accounts,
to one endpoint; the clock runs from the workers' start until every delivery is marked delivered. Each delivery is
signed with the Standard Webhooks library, checked against the SSRF rules (the receiver's loopback address is
allowed by ACCOUNTDESK_WEBHOOK_ALLOW_PRIVATE_TARGETS), POSTed, and logged (an attempt row): a worker claims up to 20
rows, sends them concurrently and records their outcomes in one transaction. The tables are ANALYZEd after the events
are written, as autovacuum would do within a minute: without statistics PostgreSQL plans the claim's "no earlier row
of this subject is waiting" check as a scan per row (about 1 s per claim at 3,000 rows instead of a few ms).
Issue 10's target: ≥ 1,000 deliveries/s.

Run alone with `python -m bench --only webhooks --database postgresql`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from accountdesk.core.audit import Actor
from accountdesk.core.settings import get_settings
from accountdesk.webhooks import service
from accountdesk.webhooks.events import emit
from accountdesk.webhooks.models import WebhookDelivery
from bench.common import Target, free_port, fresh_database, rate
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
    with target.db.engine.connect() as conn:  # what autovacuum does within a minute: the claim's plan needs it
        conn.exec_driver_sql("ANALYZE outbox_messages")
        conn.exec_driver_sql("ANALYZE webhook_deliveries")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _delivered(target: Target) -> int:
    with target.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.status == "delivered"))


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
            done, deadline, warm = 0, started + max(bench.seconds * 10, 120), None
            while done < EVENTS and time.monotonic() < deadline:
                time.sleep(0.2)
                done = _delivered(target)
                if warm is None and done:  # the workers have started: CPU from here on is delivery work
                    warm = (done, sum(_cpu_seconds(process.pid) for process in workers),
                            _cpu_seconds(receiving.pid))
            elapsed = time.monotonic() - started  # includes the workers' start-up (imports, ~1 s)
            cpu = sum(_cpu_seconds(process.pid) for process in workers) - (warm[1] if warm else 0)
            receiver_cpu = _cpu_seconds(receiving.pid) - (warm[2] if warm else 0)
            load = os.getloadavg()[0]
            counted = done - (warm[0] if warm else 0)
        finally:
            for process in [*workers, receiving]:
                process.terminate()
            for process in [*workers, receiving]:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if done < EVENTS:
            print((target.workdir / "workers.log").read_text()[-3000:])
        figure = rate(done, elapsed)
        print(f"  {done} of {EVENTS} delivered in {elapsed:.1f} s: {figure:,.0f} deliveries/s "
              f"({WORKERS} workers, start-up included)")
        per_delivery = cpu / counted * 1000 if counted > 0 else 0.0
        ceiling = 2000 / per_delivery if per_delivery else 0
        receiver_ms = receiver_cpu / counted * 1000 if counted > 0 else 0.0
        print(f"  worker CPU after start-up: {cpu:.1f} s for {counted} deliveries, {per_delivery:.2f} ms each "
              f"(receiver {receiver_ms:.2f} ms more); on 2 idle cores the workers alone allow at most "
              f"{ceiling:,.0f} deliveries/s; load average at the end {load:.1f}")
        bench.report(NAME, "postgresql", "deliveries/s, 2 workers", figure, "/s", "target ≥ 1,000")
        bench.report(NAME, "postgresql", "worker CPU per delivery", per_delivery, "ms", "after start-up")
        bench.report(NAME, "postgresql", "worker + receiver CPU per delivery", per_delivery + receiver_ms, "ms",
                     "target ≲ 1.5")
