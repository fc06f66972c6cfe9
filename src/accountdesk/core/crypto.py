"""Secrets that must be read back (a TOTP seed, an enrolment in progress) are sealed with Fernet (AES-CBC +
HMAC-SHA256), under a key derived from ACCOUNTDESK_SECRET_KEY per purpose: a database leak alone reveals none of
them. Changing the secret key makes them unreadable, as it already ends every session and link token."""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from accountdesk.core.security import keys


@lru_cache
def _fernet(secret_key: str, purpose: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=f"accountdesk:{purpose}".encode()).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plain: str, purpose: str) -> str:
    return _fernet(keys().secret_key, purpose).encrypt(plain.encode()).decode()


def unseal(sealed: str, purpose: str, *, max_age_seconds: int | None = None) -> str | None:
    """The sealed text, or None when it was not sealed by us for this purpose, was altered or is too old."""
    try:
        return _fernet(keys().secret_key, purpose).decrypt(sealed.encode(), ttl=max_age_seconds).decode()
    except (InvalidToken, ValueError):
        return None
