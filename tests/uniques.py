"""Keys, e-mails and client addresses of one test only: Redis outlives the test database, so one test's counters
must neither meet another run's nor stay behind."""

from __future__ import annotations

import uuid

import pytest
import redis

from accountdesk.core.ratelimit import NAMESPACE, PasswordAttempt
from tests.conftest import IN_CI

REDIS_URL = "redis://127.0.0.1:6379/14"


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis is not reachable on 127.0.0.1:6379")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")


class Unique:
    def __init__(self) -> None:
        self.run = uuid.uuid4().hex
        self.network = f"10.{uuid.uuid4().int % 256}.{uuid.uuid4().int % 256}."
        self.network6 = f"2001:db8:{uuid.uuid4().int % 65535:x}:1:"  # one /64
        self.logins: list[tuple[str, str]] = []

    def __call__(self, name: str) -> str:
        return f"{name}-{self.run}"

    def email(self, name: str, realm: str = "staff") -> str:
        """An e-mail of this test; `realm` is whose login it is (for `forget`)."""
        email = f"{name}-{self.run[:12]}@example.com"
        self.logins.append((realm, email))
        return email

    def address(self, n: int) -> str:
        return f"{self.network}{n}"

    def address6(self, n: int) -> str:
        return f"{self.network6}:{n:x}"

    def forget_address(self, address: str) -> None:
        """Delete this test's counters at an address shared with other tests (127.0.0.1), and that address's."""
        attempts = [PasswordAttempt(realm, email, address) for realm, email in self.logins]
        redis.Redis.from_url(REDIS_URL).delete(f"{NAMESPACE}:{PasswordAttempt('', '', address).address_key}",
                                               *(f"{NAMESPACE}:{a.pair_key}" for a in attempts),
                                               *(f"{NAMESPACE}:{a.known_key}" for a in attempts))

    def forget(self) -> None:
        """Delete every Redis entry of this test: those named after its keys or addresses, its e-mails' counters."""
        client = redis.Redis.from_url(REDIS_URL)
        try:
            for pattern in (f"*{self.run}*", f"*{self.network}*", f"*{self.network6}*"):
                for name in client.scan_iter(match=pattern):
                    client.delete(name)
            for realm, email in self.logins:
                client.delete(f"{NAMESPACE}:{PasswordAttempt(realm, email, '').email_key}")
        except redis.RedisError:
            pass
