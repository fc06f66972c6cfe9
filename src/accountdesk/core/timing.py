"""Answers whose duration must not tell two cases apart when one case has more to do than the other (a new login
is inserted; a known e-mail only gets its owner a message): both are held to a floor that the costly case rarely
exceeds.

The floor of a kind of request (the kinds that do the same work) is the 90th percentile of its last WINDOW costly
durations, per process. A request that finishes under it sleeps until it is reached, costly or cheap alike, so the
two cases end at the same time and wake from the same kind of sleep: a sleeping thread wakes late on a busy machine
(the CPU and the GIL are taken), by several milliseconds, and only the cheap case sleeping would make it the slower
one. Before a kind has costly durations of its own, those of every kind are used; before any, nobody waits.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW = 64
PERCENTILE = 0.9


class EvenDurations:
    def __init__(self, window: int = WINDOW, sleep: Callable[[float], None] = time.sleep) -> None:
        self._costly: dict[str, deque[float]] = {}
        self._window = window
        self._sleep = sleep
        self._lock = threading.Lock()

    def finished(self, kind: str, seconds: float, *, costly: bool) -> None:
        """A request of this kind took `seconds` (remembered if costly): wait until it reaches the floor."""
        with self._lock:
            if costly:
                self._costly.setdefault(kind, deque(maxlen=self._window)).append(seconds)
            recent = sorted(self._costly.get(kind) or [s for kept in self._costly.values() for s in kept])
        floor = recent[int(PERCENTILE * (len(recent) - 1))] if recent else 0.0
        if floor > seconds:
            self._sleep(floor - seconds)
