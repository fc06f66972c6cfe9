"""Password hashing (argon2id), random tokens stored only as hashes, and password policy checks."""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from accountdesk.core.i18n import _l
from accountdesk.core.settings import Settings


class Keys:
    """The hashing costs and secret key of one process, taken from the Settings of the app, worker or command that
    runs in it (`bind`): token digests, password hashes and sealed secrets are made below every look-up, where no
    app is at hand, so they read the bound keys instead of the process environment."""

    def __init__(self, settings: Settings) -> None:
        self.secret_key = settings.secret_key
        self.digest_key = settings.secret_key.encode()
        self.hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
                                     parallelism=settings.argon2_parallelism, type=Type.ID)
        # argon2 computations run at most this many at once (the others wait, using no CPU): each one walks its own
        # 19 MiB, and more of them than there are CPUs take turns on a CPU, evicting each other's memory from its
        # caches, which makes every one of them cost more CPU.
        self.lanes = threading.BoundedSemaphore(settings.hashing_threads or len(os.sched_getaffinity(0)))
        self._dummy: str | None = None

    @property
    def dummy_hash(self) -> str:
        if self._dummy is None:
            with self.lanes:
                if self._dummy is None:
                    self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy


_bound: Keys | None = None


def bind(settings: Settings) -> None:
    """Use these settings' keys and costs in this process from now on (create_app, the worker and every command
    that hashes or digests do it)."""
    global _bound
    _bound = Keys(settings)


def keys() -> Keys:
    if _bound is None:
        raise RuntimeError("no settings bound: create the app (or call accountdesk.core.security.bind) first")
    return _bound


def password_hasher() -> PasswordHasher:
    return keys().hasher


def hash_password(password: str) -> str:
    bound = keys()
    with bound.lanes:
        return bound.hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash, spend the same time on a dummy so unknown e-mails are not revealed."""
    bound = keys()
    stored = password_hash or bound.dummy_hash
    try:
        with bound.lanes:
            return bound.hasher.verify(stored, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return keys().hasher.check_needs_rehash(password_hash)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are high-entropy, so a keyed SHA-256 is enough; the database never sees the token itself."""
    return hmac.digest(keys().digest_key, token.encode(), "sha256").hex()


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    max_length: int = 128
    require_character_classes: bool = False
    reject_common: bool = True

    def problems(self, password: str, *, personal: tuple[str, ...] = ()) -> list[Any]:
        """Readable reasons the password is refused (lazy strings: shown in the reader's language); empty when it is
        accepted."""
        found: list[Any] = []
        if len(password) < self.min_length:
            found.append(_l("Use at least %(count)s characters.", count=self.min_length))
        if len(password) > self.max_length:
            found.append(_l("Use at most %(count)s characters.", count=self.max_length))
        if self.require_character_classes:
            if not any(c.isupper() for c in password):
                found.append(_l("Include a capital letter."))
            if not any(c.isdigit() for c in password):
                found.append(_l("Include a number."))
            if all(c.isalnum() for c in password):
                found.append(_l("Include a special character such as ! or #."))
        if self.reject_common and is_common_password(password):
            found.append(_l("This password is too common; choose one that is harder to guess."))
        lowered = password.lower()
        if any(p and len(p) >= 4 and p.lower() in lowered for p in personal):
            found.append(_l("Do not use your name or e-mail address in the password."))
        return found


@lru_cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    lowered = password.lower()
    if lowered in _common_passwords():
        return True
    # "password1234!" is as weak as "password": strip trailing digits and symbols before looking.
    stem = lowered.rstrip("0123456789!@#$%^&*.?_-")
    return len(stem) >= 4 and stem in _common_passwords() and len(set(lowered[len(stem):])) <= 4
