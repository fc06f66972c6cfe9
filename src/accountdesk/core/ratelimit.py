"""Rate limits shared by every process: in Redis when ACCOUNTDESK_REDIS_URL is set, otherwise in the database
(table rate_limit_hits; on SQLite in a sidecar file).

Every limit counts an attempt *before* the work it limits runs (a password check, a registration, a reset mail),
atomically: the times of the earlier attempts are read, the decision taken and the attempt written in one
transaction that no other attempt on the same keys can interleave with. So N parallel requests never get more than
the limit, and an attempt counts against all its keys or, when one of them is full (429 with Retry-After), none.

Password checks all go through `password_attempt` and `password_accepted`: one counter for the staff console and
API and for every storefront's sign-in pages, API and current-password check.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import redis
from limits import parse
from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.orm import Session

from accountdesk.core.db import Database, serialise, utcnow
from accountdesk.core.errors import TooManyRequests
from accountdesk.core.models import RateLimitHit

NAMESPACE = "accountdesk"

# Password checks, after Keycloak's brute-force detection and OWASP ASVS: tight limits on what one client address
# may try, a growing delay (never a lock) per e-mail, and the owner's own addresses exempt from that delay.
PAIR_LIMIT = "10/15 minutes"  # checks of one e-mail's password from one client address; the right password clears it
ADDRESS_LIMIT = "20/15 minutes"  # checks from one client address, whatever the e-mail, except at its known addresses
KNOWN_ADDRESS = timedelta(days=30)  # an address that gave the right password is the owner's, for this long
KEPT_AT_MOST = KNOWN_ADDRESS  # no count looks further back: an older row is of no use to anyone (forget_expired)


@dataclass(frozen=True)
class Backoff:
    """Growing delays: `free` attempts within `window`, then each further attempt must wait, after the one before
    it, twice as long as the previous wait (from `first`, at most `longest`)."""

    free: int
    first: timedelta
    longest: timedelta
    window: timedelta

    def wait(self, earlier: int) -> float:
        """Seconds to wait after the latest of `earlier` attempts in the window."""
        if earlier < self.free:
            return 0.0
        return min(self.first.total_seconds() * 2 ** (earlier - self.free), self.longest.total_seconds())

    @property
    def kept(self) -> int:
        """Attempts worth remembering: past this many, the wait is the longest anyway."""
        return self.free + math.ceil(math.log2(self.longest / self.first)) + 1


# Checks of one e-mail's password from addresses that are not its owner's (Keycloak: 30 failures, then waits from
# 1 to 15 minutes, forgotten after 12 hours). Its owner is told when the delays begin.
EMAIL_DELAYS = Backoff(free=20, first=timedelta(minutes=1), longest=timedelta(minutes=15), window=timedelta(hours=12))


def _client_network(client: str) -> str:
    """Whom a per-address limit counts: the address, or for IPv6 its /64 (one subscriber's whole network)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


@dataclass(frozen=True)
class PasswordAttempt:
    """One password check about to run: whose password (`realm`: "staff" or one storefront, and the e-mail) and
    from which client address."""

    realm: str
    email: str
    client: str
    owner_address: bool = False  # the right password came from this address before
    warn_owner: bool = False  # this attempt began the e-mail's delays: tell its owner their login is attacked

    @property
    def _login(self) -> str:
        # A digest keeps e-mails out of the counters and the keys short.
        return hashlib.sha256(f"{self.realm}\n{self.email}".encode()).hexdigest()[:32]

    @property
    def _network(self) -> str:
        return _client_network(self.client)

    @property
    def address_key(self) -> str:
        return f"password:address:{self._network}"

    @property
    def pair_key(self) -> str:
        return f"password:pair:{self._login}:{self._network}"

    @property
    def email_key(self) -> str:
        return f"password:email:{self._login}"

    @property
    def known_key(self) -> str:
        return f"password:known:{self._login}:{self._network}"


def _bounded(key: str) -> str:
    """Keys fit the table's column: a long one (an e-mail may have 320 characters) keeps its start and a digest."""
    return key if len(key) <= 200 else f"{key[:120]}~{hashlib.sha256(key.encode()).hexdigest()}"


def sidecar(db: Database) -> Database:
    """On SQLite the counters live in a file of their own: a request holds the main file's write lock from its
    first query to its commit, and counting a failure in between must not wait for that lock."""
    path = db.url.split("///", 1)[-1]
    url = "sqlite://" if path in ("", ":memory:", db.url) else f"sqlite:///{path}.ratelimits"
    counters = Database(url)
    RateLimitHit.__table__.create(counters.engine, checkfirst=True)
    return counters


@dataclass(frozen=True)
class Count:
    """One key an attempt counts against: the attempts kept (newest first, within `window`, at most `kept`) and the
    rule that turns their times and the time now into the seconds the attempt must wait (0 or less: go)."""

    key: str
    window: timedelta
    kept: int
    wait: Callable[[Sequence[float], float], float]

    @classmethod
    def window_limit(cls, limit: str, key: str) -> Count:
        """A moving window such as "10/15 minutes": full when it holds `amount` attempts."""
        item = parse(limit)
        if timedelta(seconds=item.get_expiry()) > KEPT_AT_MOST:
            raise ValueError(f"{limit!r} looks further back than rows are kept ({KEPT_AT_MOST})")
        return cls(key, timedelta(seconds=item.get_expiry()), item.amount,
                   lambda times, now: times[item.amount - 1] + item.get_expiry() - now
                   if len(times) >= item.amount else 0.0)

    @classmethod
    def delays(cls, backoff: Backoff, key: str) -> Count:
        def wait(times: Sequence[float], now: float) -> float:
            seconds = backoff.wait(len(times))
            return times[0] + seconds - now if seconds else 0.0
        return cls(key, backoff.window, backoff.kept, wait)


class RateLimits:
    def __init__(self, db: Database, redis_url: str | None = None, enabled: bool = True) -> None:
        self.db, self.enabled = (sidecar(db) if not db.is_postgresql else db), enabled
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None

    def hit(self, limits: Mapping[str, str]) -> None:
        """Count one attempt against every key ({key: limit such as "5/hour"}), or against none and 429 when any of
        them is full."""
        if self.enabled:
            self.take([Count.window_limit(limit, key) for key, limit in limits.items()])

    def clear(self, *keys: str) -> None:
        keys = tuple(map(_bounded, keys))
        if self.redis is not None:
            self.redis.delete(*(self._name(key) for key in keys))
            return
        with self.db.transaction() as session:
            session.execute(delete(RateLimitHit).where(RateLimitHit.key.in_(keys)))

    def take(self, counts: Sequence[Count]) -> list[int]:
        """Count one attempt against every key, or against none and 429 while any of them has to wait; returns how
        many attempts each key held before this one."""
        counts = [replace(count, key=_bounded(count.key)) for count in counts]
        retry_after, earlier = (self._redis_take if self.redis is not None else self._db_take)(counts)
        if retry_after > 0:
            raise TooManyRequests(math.ceil(retry_after))
        return earlier

    def remember(self, key: str, period: timedelta, *, clearing: Sequence[str] = ()) -> None:
        """Remember `key` for `period` (and clear the keys `clearing`, in the same step)."""
        key, cleared = _bounded(key), [_bounded(k) for k in clearing]
        if self.redis is not None:
            if cleared:
                self.redis.delete(*(self._name(k) for k in cleared))
            self.redis.set(self._name(key), 1, ex=period)
            return
        with self.db.transaction() as session:
            session.execute(delete(RateLimitHit).where(RateLimitHit.key.in_([key, *cleared])))
            session.add(RateLimitHit(key=key, hit_at=utcnow()))

    def remembers(self, key: str, period: timedelta) -> bool:
        key = _bounded(key)
        if self.redis is not None:
            return bool(self.redis.exists(self._name(key)))
        with self.db.transaction() as session:
            return bool(session.scalar(select(exists().where(RateLimitHit.key == key,
                                                             RateLimitHit.hit_at > utcnow() - period))))

    # Password checks ---------------------------------------------------------------------------------------------

    def forget_expired(self) -> int:
        """Remove the database's counts that no limit looks back to any more (a key counts its own old rows away
        only when it is hit again; most never are); returns how many. The periodic worker calls it."""
        with self.db.transaction() as session:
            gone = session.execute(delete(RateLimitHit).where(RateLimitHit.hit_at < utcnow() - KEPT_AT_MOST))
            return gone.rowcount or 0

    def password_attempt(self, realm: str, email: str, client: str) -> PasswordAttempt:
        """Count one password check before it runs; 429 when its (e-mail, address) pair or, from an address that
        is not the owner's, its client address or its e-mail has to wait. Call `password_accepted` when the
        password was right, and tell the owner when `warn_owner` is set."""
        attempt = PasswordAttempt(realm, email.strip().lower(), client)
        if not self.enabled:
            return attempt
        if self.remembers(attempt.known_key, KNOWN_ADDRESS):
            self.take([Count.window_limit(PAIR_LIMIT, attempt.pair_key)])
            return replace(attempt, owner_address=True)
        *_, earlier = self.take([Count.window_limit(PAIR_LIMIT, attempt.pair_key),
                                 Count.window_limit(ADDRESS_LIMIT, attempt.address_key),
                                 Count.delays(EMAIL_DELAYS, attempt.email_key)])
        return replace(attempt, warn_owner=earlier + 1 == EMAIL_DELAYS.free)

    def password_accepted(self, attempt: PasswordAttempt) -> None:
        """The password was right: its pair starts afresh and its address counts as the owner's from now on."""
        if self.enabled:
            self.remember(attempt.known_key, KNOWN_ADDRESS, clearing=[attempt.pair_key])

    # Stores ------------------------------------------------------------------------------------------------------

    def _db_take(self, counts: Sequence[Count]) -> tuple[float, list[int]]:
        """One transaction that no other attempt on these keys can interleave with (`core.db.serialise`: on SQLite
        the sidecar's write lock, on PostgreSQL an advisory lock per key, taken in one order, so never a deadlock).
        The time is read once the locks are held, so that it never runs behind an attempt already written."""
        with self.db.transaction() as session:
            serialise(session, *(f"ratelimit:{count.key}" for count in counts))
            now = utcnow()
            kept = self._db_times(session, counts, now)
            retry_after = max(count.wait(times, now.timestamp()) for count, times in zip(counts, kept, strict=True))
            if retry_after <= 0:
                session.add_all(RateLimitHit(key=count.key, hit_at=now) for count in counts)
            return retry_after, [len(times) for times in kept]

    @staticmethod
    def _db_times(session: Session, counts: Sequence[Count], now: datetime) -> list[list[float]]:
        """Per count, the times of the attempts within its window, newest first (at most `kept`): what has left
        its window is deleted, and every key's times are read in one statement."""
        session.execute(delete(RateLimitHit).where(or_(*(
            and_(RateLimitHit.key == count.key, RateLimitHit.hit_at <= now - count.window) for count in counts))))
        times: dict[str, list[float]] = {}
        for key, hit_at in session.execute(select(RateLimitHit.key, RateLimitHit.hit_at)
                                           .where(RateLimitHit.key.in_({count.key for count in counts}))
                                           .order_by(RateLimitHit.hit_at.desc())):
            times.setdefault(key, []).append(hit_at.timestamp())
        return [times.get(count.key, [])[:count.kept] for count in counts]

    def _redis_take(self, counts: Sequence[Count]) -> tuple[float, list[int]]:
        """The same on Redis, a list of attempt times per key: read and extended in one optimistic transaction
        (WATCH/MULTI/EXEC, run again when another attempt changed one of the lists in between)."""
        assert self.redis is not None
        names = [self._name(count.key) for count in counts]

        def take(pipe: redis.client.Pipeline) -> tuple[float, list[int]]:
            now = time.time()
            kept = [[t for t in map(float, pipe.lrange(name, 0, count.kept - 1))
                     if t > now - count.window.total_seconds()] for name, count in zip(names, counts, strict=True)]
            retry_after = max(count.wait(times, now) for count, times in zip(counts, kept, strict=True))
            pipe.multi()
            if retry_after <= 0:
                for name, count in zip(names, counts, strict=True):
                    pipe.lpush(name, now)
                    pipe.ltrim(name, 0, count.kept - 1)
                    pipe.expire(name, count.window)
            return retry_after, [len(times) for times in kept]

        return self.redis.transaction(take, *names, value_from_callable=True)

    @staticmethod
    def _name(key: str) -> str:
        return f"{NAMESPACE}:{key}"
