"""Section 1: the bare argon2id cost on one core with the production parameters (the ceiling for sign-in)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench.common import rate
from bench.runner import Bench

NAME = "hashing"
TITLE = "hashing: argon2id on one core, production parameters"
PASSWORD = "Quiet-harbor-lantern-4711"


def production_parameters() -> dict[str, int]:
    """The Settings defaults, which is what a deployment runs unless it overrides them."""
    from accountdesk.core.settings import Settings

    settings = Settings()
    fields = Settings.model_fields
    params = {"memory_kib": settings.argon2_memory_kib, "time_cost": settings.argon2_time_cost,
              "parallelism": settings.argon2_parallelism}
    defaults = {"memory_kib": fields["argon2_memory_kib"].default, "time_cost": fields["argon2_time_cost"].default,
                "parallelism": fields["argon2_parallelism"].default}
    if params != defaults:
        raise SystemExit(f"argon2 settings {params} differ from the defaults {defaults}: "
                         "unset ACCOUNTDESK_ARGON2_* (python -m bench clears them itself)")
    return params


def timed(seconds: float, operation: Callable[[], object]) -> tuple[int, float]:
    """Run `operation` back to back in this thread for about `seconds`; (count, elapsed)."""
    operation()  # warm-up: allocator, first-call costs
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        operation()
        count += 1
    return count, elapsed


def hash_rate(seconds: float) -> tuple[float, int, float]:
    """New-password hashes per second on one core (what a registration or a password change spends its CPU on);
    (rate, count, elapsed)."""
    from accountdesk.core.security import hash_password

    count, elapsed = timed(seconds, lambda: hash_password(PASSWORD))
    return rate(count, elapsed), count, elapsed


def verify_rate(seconds: float) -> float:
    """Sign-in verifications per second on one core (what POST /staff/tokens spends its CPU on)."""
    from accountdesk.core.security import hash_password, verify_password

    stored = hash_password(PASSWORD)
    count, elapsed = timed(seconds, lambda: verify_password(stored, PASSWORD))
    return rate(count, elapsed)


def on_all_cores(seconds: float, operation: Callable[[], object], threads: int) -> float:
    """`operation`s per second with `threads` threads running it back to back (argon2-cffi releases the GIL)."""
    with ThreadPoolExecutor(threads) as pool:
        runs = list(pool.map(lambda _: timed(seconds, operation), range(threads)))
    return sum(rate(count, elapsed) for count, elapsed in runs)


def verify_rate_all_cores(seconds: float) -> tuple[float, int]:
    """Verifications per second with one thread per CPU: the ceiling for a sign-in server on this machine."""
    from accountdesk.core.security import hash_password, verify_password

    stored, threads = hash_password(PASSWORD), len(os.sched_getaffinity(0))
    return on_all_cores(seconds, lambda: verify_password(stored, PASSWORD), threads), threads


def hash_rate_all_cores(seconds: float, threads: int) -> float:
    """New-password hashes per second with `threads` threads: what `threads` cores can hash at most."""
    from accountdesk.core.security import hash_password

    return on_all_cores(seconds, lambda: hash_password(PASSWORD), threads)


def hash_cpu_seconds(seconds: float) -> float:
    """CPU time of one hash on one core (this thread's own CPU clock, so waiting for a busy machine's CPUs is not
    counted): what a request that did nothing but hash would cost a server."""
    from accountdesk.core.security import hash_password

    hash_password(PASSWORD)  # warm-up
    count, started, wall = 0, time.thread_time(), time.perf_counter()
    while time.perf_counter() - wall < seconds:
        hash_password(PASSWORD)
        count += 1
    return (time.thread_time() - started) / count


def run(bench: Bench) -> None:
    from accountdesk.core.security import password_hasher

    params = production_parameters()
    hasher = password_hasher()
    if (hasher.memory_cost, hasher.time_cost, hasher.parallelism) != tuple(params.values()):
        raise SystemExit("accountdesk.core.security.password_hasher() does not use the Settings defaults")
    print(f"  argon2id m={params['memory_kib']} KiB, t={params['time_cost']}, p={params['parallelism']} "
          f"(Settings defaults), one thread, {bench.seconds:g} s per run")
    hashes, count, elapsed = hash_rate(bench.seconds)
    print(f"  hash:   {count} in {elapsed:.2f} s = {hashes:.1f}/s ({1000 / hashes:.1f} ms each)")
    verifies = verify_rate(bench.seconds)
    print(f"  verify: {verifies:.1f}/s ({1000 / verifies:.1f} ms each)")
    all_cores, threads = verify_rate_all_cores(bench.seconds)
    print(f"  verify, {threads} threads: {all_cores:.1f}/s ({all_cores / verifies:.2f}x one core)")
    note = f"m={params['memory_kib']} t={params['time_cost']} p={params['parallelism']}, 1 core"
    bench.report(NAME, "-", "hash rate", hashes, "hashes/s", note)
    bench.report(NAME, "-", "verify rate", verifies, "verifies/s", note)
    bench.report(NAME, "-", "verify rate, all cores", all_cores, "verifies/s", f"{threads} threads")
