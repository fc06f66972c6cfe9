"""Password hashing runs at most `hashing_threads` argon2 computations at once per process; the others wait."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher

from accountdesk.core import security
from accountdesk.core.settings import get_settings


class Counting(PasswordHasher):
    """argon2-cffi's hasher, noting how many of its computations run at once (each made to last 20 ms)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.lock, self.running, self.most = threading.Lock(), 0, 0

    def _at_once(self, work):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.02)
            return work()
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password, *, salt=None):
        return self._at_once(lambda: super(Counting, self).hash(password, salt=salt))

    def verify(self, hash, password):
        return self._at_once(lambda: super(Counting, self).verify(hash, password))


def _most_at_once(threads: int) -> int:
    settings = get_settings().model_copy(update={"hashing_threads": threads})
    security.bind(settings)
    keys = security.keys()
    counting = Counting(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
                        parallelism=settings.argon2_parallelism)
    keys.hasher = counting
    try:
        stored = security.hash_password("a-long-enough-password")
        with ThreadPoolExecutor(8) as pool:
            checks = list(pool.map(lambda n: security.verify_password(stored if n % 2 else None,
                                                                      "a-long-enough-password"), range(16)))
        assert checks == [bool(n % 2) for n in range(16)]  # unknown e-mails still cost one (dummy) verification
        return counting.most
    finally:
        security.bind(get_settings())


def test_a_process_computes_at_most_its_hashing_threads_at_once():
    assert _most_at_once(1) == 1
    assert _most_at_once(2) == 2
    assert _most_at_once(8) > 2  # without a tight limit they do overlap, so the limits above are what holds them
