"""Section: what a storefront sign-in and a registration cost the server besides their argon2 hash (issue 9), in the
shape peers are measured in: 2 app processes, 8 concurrent clients, a fixed number of requests, rate limits off,
argon2id with the production parameters.

Per database, on a fresh database with one `open` storefront (the storefront section's data and requests):

- sign-in: `--requests` POST /api/v1/storefronts/{slug}/sessions, each for another login;
- registration: `--requests` POST /api/v1/storefronts/{slug}/registrations with distinct e-mails; the CPU is read
  once the outbox workers have written every verification e-mail, so rendering and writing them is counted.

The server's CPU is the user + system time of all its processes (`accountdesk serve` and its uvicorn workers, from
/proc/<pid>/stat) over the requests. Two figures per kind of request, each against argon2 measured in this run:

- **one hash / CPU per request**: the CPU of one hash on one core (this bench's thread clock) divided by the
  server CPU per request. 1.0 means the server spends nothing but the hash.
- **rate / all-core hash rate**: requests per second divided by the hashes per second of one thread per core the
  server may use, hashing back to back. 1.0 means serving requests is as fast as hashing on every core.

Run alone with `python -m bench --only efficiency`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import App, CpuWatch, Target, fresh_database, percentile, print_table, running_app
from bench.hashing import hash_cpu_seconds, hash_rate_all_cores
from bench.instant import Phase, Run, phase, plain_registration, timed
from bench.runner import Bench
from bench.storefront import CONTACTS, SLUG, prepare, signing_in

NAME = "efficiency"
TITLE = "efficiency: server CPU per sign-in and registration against one argon2 hash, 2 app processes"
WORKERS = 2  # app processes
CLIENTS = 8  # concurrent clients, each on its own keep-alive connection
WARM_UP = 4 * CLIENTS  # untimed requests of each kind, so that both processes have served before the count
NO_DEADLINE = 3600.0  # seconds: a run ends when its requests are done
TARGETS = {"sign-in": (0.92, 0.80), "registration": (0.85, 0.75)}  # (hash / CPU per request, rate / all-core hash)
TARGET_SIGNIN_P95_MS = 200.0


@dataclass
class Baseline:
    hash_cpu: float  # CPU seconds of one hash on one core
    all_cores: float  # hashes per second, one thread per core
    cores: int


@dataclass
class Measured:
    kind: str
    label: str
    taken: Phase
    machine: CpuWatch

    @property
    def cpu_per_request(self) -> float:
        return self.taken.server_cpu / self.taken.run.ok if self.taken.run.ok else float("nan")


def baseline(bench: Bench, cores: int) -> Baseline:
    """One hash's CPU on one core and the hash rate of `cores` threads, measured now with the bench's functions."""
    return Baseline(hash_cpu_seconds(bench.seconds), hash_rate_all_cores(bench.seconds, cores), cores)


def settle(app: App) -> None:
    """Wait until every worker process runs and the server is idle, so start-up work is not counted."""
    deadline = time.monotonic() + 60
    while len(app.pids()) < app.processes and time.monotonic() < deadline:
        time.sleep(0.1)
    before = app.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = app.cpu_seconds()
        if now - before < 0.05:
            return
        before = now


def mails(folder: Path) -> int:
    return len(list(folder.glob("*.eml"))) if folder.exists() else 0


def wait_for_mails(folder: Path, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while mails(folder) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    if mails(folder) < count:
        print(f"  only {mails(folder)} of {count} e-mails were written within {timeout:.0f} s")


def measure(target: Target, bench: Bench) -> tuple[list[Measured], int]:
    """The sign-ins, then the registrations, against one `accountdesk serve --workers 2`; also the CPUs it may use."""
    emails = prepare(target, max(CONTACTS, bench.requests + WARM_UP))
    folder = target.workdir / "mail"
    with running_app(target, workers=WORKERS, ACCOUNTDESK_RATE_LIMITS_ENABLED="false") as app:
        warm_up = timed(app.base_url, CLIENTS, emails[-WARM_UP:], NO_DEADLINE, signing_in)
        warm_up.ok += timed(app.base_url, CLIENTS, range(10**6, 10**6 + WARM_UP), NO_DEADLINE,
                            plain_registration(SLUG)).ok
        if warm_up.ok < 2 * WARM_UP:
            raise RuntimeError(f"warm-up failed: {dict(warm_up.statuses)} (server log: {target.workdir})")
        wait_for_mails(folder, WARM_UP)
        settle(app)
        with CpuWatch() as signin_machine, phase(app, None) as signin:
            signin.run = timed(app.base_url, CLIENTS, emails[: bench.requests], NO_DEADLINE, signing_in)
        settle(app)
        with CpuWatch() as registration_machine, phase(app, None) as registration:
            registration.run = timed(app.base_url, CLIENTS, range(bench.requests), NO_DEADLINE,
                                     plain_registration(SLUG))
            wait_for_mails(folder, WARM_UP + registration.run.ok)  # the e-mails are part of a registration
        if len(app.pids()) != app.processes:  # a worker restarted: its start-up CPU may be counted
            print(f"  {target.kind}: the server ran {len(app.pids())} processes, expected {app.processes}")
        cores = app.cores()
    return [Measured(target.kind, "sign-in", signin, signin_machine),
            Measured(target.kind, "registration", registration, registration_machine)], cores


def _verdict(value: float, target: float) -> str:
    return f"target >= {target}: {'met' if value >= target else 'MISSED'}"


def report(bench: Bench, m: Measured, base: Baseline) -> tuple[str, ...]:
    run: Run = m.taken.run
    share, speed = base.hash_cpu / m.cpu_per_request, run.rate / base.all_cores
    p95 = percentile(run.latencies_ms, 95)
    share_target, speed_target = TARGETS[m.label]
    bench.report(NAME, m.kind, f"{m.label} hash / CPU per request", share, "ratio",
                 f"{1000 * m.cpu_per_request:.1f} ms per {m.label}, hash {1000 * base.hash_cpu:.1f} ms; "
                 f"{_verdict(share, share_target)}")
    bench.report(NAME, m.kind, f"{m.label} rate / all-core hash rate", speed, "ratio",
                 f"{run.rate:.1f}/s vs {base.all_cores:.1f} hashes/s on {base.cores} cores; "
                 f"{_verdict(speed, speed_target)}")
    if m.label == "sign-in":
        met = "met" if p95 <= TARGET_SIGNIN_P95_MS else "MISSED"
        bench.report(NAME, m.kind, "sign-in p95 under load", p95, "ms",
                     f"{CLIENTS} clients; target <= {TARGET_SIGNIN_P95_MS:.0f} ms: {met}")
    if run.errors:
        print(f"  {m.kind} {m.label}: unexpected answers {dict(run.statuses)}")
    return (f"{m.kind} {m.label}", str(run.ok), f"{run.rate:.1f}", f"{1000 * m.cpu_per_request:.1f}",
            f"{1000 * base.hash_cpu:.1f}", f"{share:.2f}",
            f"{speed:.2f}", f"{percentile(run.latencies_ms, 50):.0f}", f"{p95:.0f}",
            f"{m.taken.server_cpu / run.elapsed:.2f}", f"{m.taken.bench_cpu / run.elapsed:.2f}",
            f"{m.machine.busy_cores:.2f}", f"{m.machine.steal_cores:.2f}", str(run.errors))


def run(bench: Bench) -> None:
    print(f"  {WORKERS} app processes, {CLIENTS} concurrent clients, {bench.requests} sign-ins and {bench.requests} "
          f"registrations per database, rate limits off; argon2id with the Settings defaults, measured after each "
          f"database's runs ({bench.seconds:g} s one core, {bench.seconds:g} s all cores)")
    rows = [("run", "requests", "per s", "CPU ms/request", "hash ms", "hash / CPU", "rate / all-core hash", "p50 ms",
             "p95 ms", "server cores", "bench cores", "machine busy", "steal", "errors")]
    for kind in bench.databases:
        print(f"  {kind}: {bench.requests} sign-ins, then {bench.requests} registrations ...", flush=True)
        with fresh_database(kind, bench.pg_url) as target:
            measured, cores = measure(target, bench)
        # argon2 right after the runs, on as many cores as the server could use, with the server stopped: close in
        # time, so that other work on a shared machine weighs on both alike
        base = baseline(bench, cores)
        rows += [report(bench, m, base) for m in measured]
    print_table(rows)
    print(f"  {'; '.join(f'{label}: hash / CPU >= {a}, rate >= {b}' for label, (a, b) in TARGETS.items())} "
          f"(issue 9); p95 of sign-in <= {TARGET_SIGNIN_P95_MS:.0f} ms")
