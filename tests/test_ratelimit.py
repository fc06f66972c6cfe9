"""Rate limits: counted atomically before the work they limit, in the database (or Redis), shared by every process,
never blocked by a request's lock; password checks under one service with per-pair, per-address and per-e-mail
limits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from accountdesk.app import create_app
from accountdesk.core.db import utcnow
from accountdesk.core.errors import TooManyRequests
from accountdesk.core.models import RateLimitHit
from accountdesk.core.ratelimit import (
    ADDRESS_LIMIT,
    EMAIL_DELAYS,
    KEPT_AT_MOST,
    NAMESPACE,
    PAIR_LIMIT,
    Backoff,
    Count,
    RateLimits,
)
from accountdesk.models import Account
from tests.mailbox import wait_for
from tests.uniques import REDIS_URL, Unique, redis_or_skip

QUICK = Backoff(free=3, first=timedelta(seconds=40), longest=timedelta(minutes=5), window=timedelta(hours=1))


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, db) -> Iterator[Callable[[], RateLimits]]:
    """A maker of RateLimits objects (one per app process) over the database, or over Redis next to it."""
    if request.param == "redis":
        redis_or_skip()
    yield lambda: RateLimits(db, REDIS_URL if request.param == "redis" else None)


@pytest.fixture
def key() -> Iterator[Unique]:
    """This test's own keys, e-mails and addresses; afterwards their Redis entries are deleted."""
    unique = Unique()
    yield unique
    unique.forget()


def everyone_at_once(count: int, attempt: Callable[[int], None]) -> int:
    """Run `attempt(n)` in `count` threads released together; how many went through (did not raise 429)."""
    start, passed, lock = threading.Barrier(count), [], threading.Lock()

    def run(n: int) -> None:
        start.wait()
        try:
            attempt(n)
        except TooManyRequests:
            return
        with lock:
            passed.append(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(passed)


def test_window_fills_then_429_with_retry_after(store, key):
    limits = store()
    for _ in range(3):
        limits.hit({key("k1"): "3/hour"})
    with pytest.raises(TooManyRequests) as refused:
        limits.hit({key("k1"): "3/hour"})
    assert 3500 <= refused.value.retry_after <= 3600
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)
    limits.hit({key("other"): "3/hour"})
    limits.clear(key("k1"))
    limits.hit({key("k1"): "3/hour"})


def test_an_attempt_counts_against_all_its_keys_or_none(store, key):
    limits = store()
    limits.hit({key("asker"): "1/hour"})
    with pytest.raises(TooManyRequests):
        limits.hit({key("asked-about"): "1/hour", key("asker"): "1/hour"})
    limits.hit({key("asked-about"): "1/hour"})  # the refused attempt did not count here


def test_long_keys_fit(store, key):
    long = f"{key('registration:email')}:" + "a" * 300  # an e-mail may have 320 characters
    limits = store()
    limits.hit({long: "1/hour"})
    with pytest.raises(TooManyRequests):
        limits.hit({long: "1/hour"})
    limits.clear(long)
    limits.hit({long: "1/hour"})


def test_counting_while_a_request_holds_its_transaction(db):
    """A failure is counted while the request's own transaction is open (SQLite: holding the write lock)."""
    limits = RateLimits(db)
    with db.transaction() as session:
        session.add(Account(number="X1", name="x"))
        session.flush()
        limits.hit({"busy": "1/minute"})
        with pytest.raises(TooManyRequests):
            limits.hit({"busy": "1/minute"})


def test_two_processes_share_counters(store, key):
    first, second = store(), store()
    first.hit({key("shared"): "2/hour"})
    second.hit({key("shared"): "2/hour"})
    with pytest.raises(TooManyRequests):
        first.hit({key("shared"): "2/hour"})


def test_parallel_hits_never_overrun_the_window(store, key):
    processes = [store(), store()]
    assert everyone_at_once(30, lambda n: processes[n % 2].hit({key("burst"): "10/hour"})) == 10


def test_growing_delays_after_the_free_attempts(store, key):
    limits = store()
    assert [limits.take([Count.delays(QUICK, key("e"))]) for _ in range(QUICK.free)] == [[0], [1], [2]]
    with pytest.raises(TooManyRequests) as waiting:
        limits.take([Count.delays(QUICK, key("e"))])
    assert 0 < waiting.value.retry_after <= 40  # `first` after the latest attempt
    assert [QUICK.wait(n) for n in range(3, 8)] == [40, 80, 160, 300, 300]  # doubled, at most `longest`


def test_parallel_attempts_never_overrun_the_delays(store, key):
    processes = [store(), store()]
    assert everyone_at_once(30, lambda n: processes[n % 2].take([Count.delays(QUICK, key("e"))])) == QUICK.free


def test_redis_keys_are_namespaced(db, key):
    redis_or_skip()
    limits = RateLimits(db, REDIS_URL)
    limits.hit({key("r"): "2/minute"})
    limits.take([Count.delays(QUICK, key("d"))])
    names = [n.decode() for n in redis.Redis.from_url(REDIS_URL).scan_iter(match=f"*{key.run}*")]
    assert sorted(names) == [f"{NAMESPACE}:{key('d')}", f"{NAMESPACE}:{key('r')}"]


# Password checks ---------------------------------------------------------------------------------------------------

def test_pair_limit_then_cleared_by_the_right_password(store, key):
    limits, email, attacker, owner = store(), key.email("owner"), key.address(1), key.address(2)
    for _ in range(parse_amount(PAIR_LIMIT)):
        limits.password_attempt("staff", email, attacker)
    with pytest.raises(TooManyRequests):
        limits.password_attempt("staff", email, attacker)
    for _ in range(parse_amount(PAIR_LIMIT) - 1):
        limits.password_attempt("staff", email, owner)
    limits.password_accepted(limits.password_attempt("staff", email, owner))
    limits.password_attempt("staff", email.upper(), owner)  # cleared; one login, however it is written
    limits.password_attempt("storefront:elsewhere", key.email("owner", "storefront:elsewhere"), attacker)


def test_address_limit_counts_across_emails_but_not_at_the_owners_address(store, key):
    limits, address = store(), key.address(3)
    limits.password_accepted(limits.password_attempt("staff", key.email("regular"), address))
    for n in range(parse_amount(ADDRESS_LIMIT) - 1):
        limits.password_attempt("staff", key.email(f"guess{n}"), address)
    with pytest.raises(TooManyRequests):
        limits.password_attempt("staff", key.email("one-more"), address)
    limits.password_attempt("staff", key.email("regular"), address)  # its owner's address


def test_ipv6_addresses_count_per_network(store, key):
    limits, email = store(), key.email("v6")
    for n in range(parse_amount(PAIR_LIMIT)):
        limits.password_attempt("staff", email, key.address6(n + 1))
    with pytest.raises(TooManyRequests):
        limits.password_attempt("staff", email, key.address6(0xffff))


def test_email_delays_spare_the_owners_address_and_warn_once(store, key):
    limits, email, owner = store(), key.email("target"), key.address(200)
    limits.password_accepted(limits.password_attempt("staff", email, owner))
    warnings = [limits.password_attempt("staff", email, key.address(n // 5 + 1)).warn_owner
                for n in range(EMAIL_DELAYS.free - 1)]
    assert warnings == [False] * (EMAIL_DELAYS.free - 2) + [True]  # the owner's first sign-in counted too
    with pytest.raises(TooManyRequests) as waiting:
        limits.password_attempt("staff", email, key.address(100))
    assert 0 < waiting.value.retry_after <= 60  # the first wait, not the pair's 15 minutes
    at_home = limits.password_attempt("staff", email, owner)
    assert at_home.owner_address and not at_home.warn_owner


def test_disabled_limits_count_nothing(db, key):
    limits = RateLimits(db, enabled=False)
    for _ in range(50):
        limits.hit({key("off"): "1/hour"})
        limits.password_attempt("staff", key.email("x"), key.address(1))


def parse_amount(limit: str) -> int:
    return int(limit.split("/")[0])


def test_the_worker_forgets_counts_no_limit_looks_back_to(db, settings):
    app = create_app(settings, db, run_worker=True)
    counters = app.state.rate_limits.db  # on SQLite the counters' own file
    now = utcnow()
    with counters.transaction() as session:
        session.add_all([RateLimitHit(key="reset:address:198.51.100.1", hit_at=now - KEPT_AT_MOST - timedelta(hours=1)),
                         RateLimitHit(key="known:198.51.100.2", hit_at=now - KEPT_AT_MOST + timedelta(hours=1)),
                         RateLimitHit(key="registration:address:198.51.100.3", hit_at=now)])

    def keys() -> set[str]:
        with counters.transaction() as session:
            return set(session.scalars(select(RateLimitHit.key)))

    with TestClient(app, base_url="http://testserver"):
        assert wait_for(lambda: keys() == {"known:198.51.100.2", "registration:address:198.51.100.3"})
