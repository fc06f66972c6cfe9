"""Rate limits: counted in the database (or Redis), shared by every process, never blocked by a request's lock."""

from __future__ import annotations

import uuid

import pytest

from accountdesk.core.errors import TooManyRequests
from accountdesk.core.ratelimit import RateLimits
from accountdesk.models import Account


def test_window_fills_then_429_with_retry_after(db):
    limits = RateLimits(db)
    for _ in range(3):
        limits.check("3/hour", "k1")
        limits.hit("3/hour", "k1")
    with pytest.raises(TooManyRequests) as refused:
        limits.check("3/hour", "k1")
    assert 3500 <= refused.value.retry_after <= 3600
    assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)
    limits.check("3/hour", "other-key")
    limits.clear("3/hour", "k1")
    limits.check("3/hour", "k1")


def test_counting_while_a_request_holds_its_transaction(db):
    """A failure is counted while the request's own transaction is open (SQLite: holding the write lock)."""
    limits = RateLimits(db)
    with db.transaction() as session:
        session.add(Account(number="X1", name="x"))
        session.flush()
        limits.hit("1/minute", "busy")
        with pytest.raises(TooManyRequests):
            limits.check("1/minute", "busy")


def test_two_processes_share_counters(db):
    first, second = RateLimits(db), RateLimits(db)
    first.hit("2/hour", "shared")
    second.hit("2/hour", "shared")
    with pytest.raises(TooManyRequests):
        first.check("2/hour", "shared")


def test_redis_backend(db, redis_url):
    key = f"r-{uuid.uuid4().hex}"  # other test runs share this Redis
    limits = RateLimits(db, redis_url)
    limits.hit("2/minute", key)
    limits.hit("2/minute", key)
    with pytest.raises(TooManyRequests) as refused:
        RateLimits(db, redis_url).check("2/minute", key)
    assert 1 <= refused.value.retry_after <= 60
