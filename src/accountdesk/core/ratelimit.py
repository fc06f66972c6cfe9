"""Rate limits shared by every process: Redis through the `limits` library when ACCOUNTDESK_REDIS_URL is set,
otherwise a moving window kept in the database (table rate_limit_hits).

Use `check` before an attempt (429 when the window is full) and `hit` to count one (a failure, a registration).
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select

from accountdesk.core.db import Database, utcnow
from accountdesk.core.errors import TooManyRequests
from accountdesk.core.models import RateLimitHit

NAMESPACE = "accountdesk"


def sidecar(db: Database) -> Database:
    """On SQLite the counters live in a file of their own: a request holds the main file's write lock from its
    first query to its commit, and counting a failure in between must not wait for that lock."""
    path = db.url.split("///", 1)[-1]
    url = "sqlite://" if path in ("", ":memory:", db.url) else f"sqlite:///{path}.ratelimits"
    counters = Database(url)
    RateLimitHit.__table__.create(counters.engine, checkfirst=True)
    return counters


class RateLimits:
    def __init__(self, db: Database, redis_url: str | None = None, enabled: bool = True) -> None:
        self.db, self.enabled = (sidecar(db) if not db.is_postgresql else db), enabled
        self.limiter = MovingWindowRateLimiter(storage_from_string(redis_url)) if redis_url else None

    def check(self, limit: str, *keys: str) -> None:
        """Raise 429 (with Retry-After) when any key has used up its window; counts nothing."""
        if not self.enabled:
            return
        item = parse(limit)
        for key in keys:
            retry_after = self._retry_after(item, key)
            if retry_after:
                raise TooManyRequests(retry_after)

    def hit(self, limit: str, *keys: str) -> None:
        """Count one attempt against every key."""
        if not self.enabled:
            return
        item = parse(limit)
        for key in keys:
            if self.limiter is not None:
                self.limiter.hit(item, NAMESPACE, key)
            else:
                self._db_hit(item, key)

    def clear(self, limit: str, *keys: str) -> None:
        item = parse(limit)
        for key in keys:
            if self.limiter is not None:
                self.limiter.clear(item, NAMESPACE, key)
            else:
                with self.db.transaction() as session:
                    session.execute(delete(RateLimitHit).where(RateLimitHit.key == key))

    def _retry_after(self, item: RateLimitItem, key: str) -> int:
        if self.limiter is not None:
            if self.limiter.test(item, NAMESPACE, key):
                return 0
            reset = self.limiter.get_window_stats(item, NAMESPACE, key).reset_time
            return max(1, math.ceil(reset - time.time()))
        window = timedelta(seconds=item.get_expiry())
        with self.db.transaction() as session:
            since = utcnow() - window
            count, oldest = session.execute(select(func.count(), func.min(RateLimitHit.hit_at))
                                            .where(RateLimitHit.key == key, RateLimitHit.hit_at > since)).one()
        if count < item.amount:
            return 0
        return max(1, math.ceil((oldest + window - utcnow()).total_seconds()))

    def _db_hit(self, item: RateLimitItem, key: str) -> None:
        window = timedelta(seconds=item.get_expiry())
        with self.db.transaction() as session:
            session.execute(delete(RateLimitHit).where(RateLimitHit.key == key,
                                                       RateLimitHit.hit_at <= utcnow() - window))
            session.add(RateLimitHit(key=key))
