"""Section 2: staff sign-in through HTTP (POST /api/v1/staff/tokens) against the real app, compared with the
bare one-core verify rate from section 1."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from bench.common import (
    CpuWatch,
    Target,
    fresh_database,
    make_staff,
    percentile,
    print_table,
    rate,
    running_app,
    sign_in,
)
from bench.runner import Bench

NAME = "signin"
TITLE = "signin: staff sign-in through HTTP"
TARGET_RATIO = 0.8


@dataclass
class ClientRun:
    ok: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


def one_client(base_url: str, email: str, deadline: float) -> ClientRun:
    """Sign in back to back on one keep-alive connection until the deadline."""
    result = ClientRun()
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = sign_in(client, email)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[response.status_code] += 1
            result.ok += response.status_code == 201
    return result


def measure(target: Target, bench: Bench) -> dict[str, float]:
    emails = make_staff(target, bench.clients)
    # The token route has no rate limit today; the flag keeps a future one from turning the run into 429s.
    with running_app(target, ACCOUNTDESK_RATE_LIMITS_ENABLED="false") as app:
        with httpx.Client(base_url=app.base_url, timeout=30) as warm:
            for email in emails:
                warm_response = sign_in(warm, email)
                if warm_response.status_code != 201:
                    raise RuntimeError(f"sign-in failed: {warm_response.status_code} {warm_response.text}")
        cpu_before, client_before = app.cpu_seconds(), os.times()
        started = time.perf_counter()
        with CpuWatch() as machine, ThreadPoolExecutor(bench.clients) as pool:
            runs = list(pool.map(lambda e: one_client(app.base_url, e, started + bench.seconds), emails))
        elapsed = time.perf_counter() - started
        server_cpu = app.cpu_seconds() - cpu_before
        client_after = os.times()
    client_cpu = (client_after.user - client_before.user) + (client_after.system - client_before.system)
    statuses = sum((r.statuses for r in runs), Counter())
    latencies = [ms for r in runs for ms in r.latencies_ms]
    return {"rate": rate(sum(r.ok for r in runs), elapsed), "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95), "server_cores": server_cpu / elapsed,
            "client_cores": client_cpu / elapsed, "machine_cores": machine.busy_cores,
            "steal_cores": machine.steal_cores,
            "errors": sum(n for code, n in statuses.items() if code != 201), "429": statuses.get(429, 0),
            "statuses": dict(statuses)}


def baseline(bench: Bench) -> tuple[float, float | None, float | None]:
    """The verify rate on one core (and the hash rate, and the verify rate on all cores) from section 1;
    the one-core verify rate is measured here when section 1 did not run."""
    verify = bench.find("hashing", "verify rate")
    hashes = bench.find("hashing", "hash rate")
    all_cores = bench.find("hashing", "verify rate, all cores")
    if verify is None:
        from bench.hashing import verify_rate

        print(f"  (hashing did not run: measuring the one-core verify rate for {min(bench.seconds, 3):g} s)")
        return verify_rate(min(bench.seconds, 3)), None, None
    return verify.value, hashes.value if hashes else None, all_cores.value if all_cores else None


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def run(bench: Bench) -> None:
    verify, hashes, all_cores = baseline(bench)
    print(f"  {bench.clients} concurrent clients, {bench.seconds:g} s, one staff user per client, "
          f"rate limits off; one-core verify rate {verify:.1f}/s")
    rows = [("database", "sign-ins/s", "x verify", "x hash", "x verify all cores", "per server core", "p50 ms",
             "p95 ms", "server cores", "client cores", "machine busy", "steal", "errors")]
    for kind in bench.databases:
        with fresh_database(kind, bench.pg_url) as target:
            m = measure(target, bench)
        ratio = m["rate"] / verify
        rows.append((kind, f"{m['rate']:.1f}", f"{ratio:.2f}", _ratio(m["rate"], hashes), _ratio(m["rate"], all_cores),
                     f"{m['rate'] / m['server_cores']:.1f}", f"{m['p50']:.0f}", f"{m['p95']:.0f}",
                     *(f"{m[key]:.2f}" for key in ("server_cores", "client_cores", "machine_cores", "steal_cores")),
                     str(m["errors"])))
        if m["errors"]:
            print(f"  {kind}: non-201 answers {m['statuses']}"
                  + (" — 429s: the token route rate-limits even with ACCOUNTDESK_RATE_LIMITS_ENABLED=false"
                     if m["429"] else ""))
        bench.report(NAME, kind, "sign-in rate", m["rate"], "sign-ins/s",
                     f"{bench.clients} clients, p95 {m['p95']:.0f} ms, server {m['server_cores']:.2f} cores")
        bench.report(NAME, kind, "sign-in / 1-core verify", ratio, "ratio",
                     f"target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    print_table(rows)
