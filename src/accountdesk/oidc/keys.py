"""Signing keys of the ID tokens and logout tokens: RSA keys kept in the database, the private half sealed with the
app's secret key. Rotation makes a new key the signing one and keeps the previous one published until the next
rotation, so that tokens it signed still verify: during a rollover the JWKS lists two keys."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accountdesk.core.crypto import seal, unseal
from accountdesk.core.db import utcnow
from accountdesk.oidc.models import KeyState, SigningKey

SEAL_PURPOSE = "oidc-signing-key"
ALGORITHM = "RS256"


def rotate(session: Session) -> SigningKey:
    """A new signing key; the current one keeps being published (retiring), older ones are withdrawn."""
    session.execute(update(SigningKey).where(SigningKey.state == KeyState.retiring)
                    .values(state=KeyState.retired, retired_at=utcnow()))
    session.execute(update(SigningKey).where(SigningKey.state == KeyState.active).values(state=KeyState.retiring))
    key = RSAKey.generate_key(2048, {"use": "sig", "alg": ALGORITHM}, auto_kid=True)
    row = SigningKey(kid=key.kid, state=KeyState.active, public_jwk=key.as_dict(private=False),
                     private_sealed=seal(json.dumps(key.as_dict(private=True)), SEAL_PURPOSE))
    session.add(row)
    session.flush()
    return row


def ensure_key(session: Session) -> bool:
    """Create the first signing key of a new install; False when there already is one."""
    if session.scalar(select(SigningKey.id).where(SigningKey.state == KeyState.active).limit(1)) is not None:
        return False
    rotate(session)
    return True


def published(session: Session) -> list[SigningKey]:
    """The keys in the JWKS (a first one is made if `db upgrade` has not made it yet)."""
    ensure_key(session)
    return list(session.scalars(select(SigningKey).where(SigningKey.state.in_((KeyState.active, KeyState.retiring)))
                                .order_by(SigningKey.id.desc())))


def jwks(session: Session) -> dict[str, Any]:
    return {"keys": [row.public_jwk for row in published(session)]}


def key_set(session: Session) -> KeySet:
    return KeySet.import_key_set(jwks(session))


@lru_cache(maxsize=8)
def _private(kid: str, sealed: str) -> RSAKey:
    plain = unseal(sealed, SEAL_PURPOSE)
    if plain is None:
        raise RuntimeError("The OIDC signing key cannot be unsealed: was ACCOUNTDESK_SECRET_KEY changed? "
                           "Run `accountdesk oidc rotate-keys`.")
    return RSAKey.import_key(json.loads(plain))


# Built once: every ID token needs it.
_ACTIVE = (select(SigningKey.kid, SigningKey.private_sealed).where(SigningKey.state == KeyState.active)
           .order_by(SigningKey.id.desc()).limit(1))


def signing_key(session: Session) -> RSAKey:
    row = session.execute(_ACTIVE).first()
    if row is None:
        row = rotate(session)
    return _private(row.kid, row.private_sealed)


def sign(session: Session, claims: dict[str, Any], typ: str = "JWT") -> str:
    key = signing_key(session)
    return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": typ}, claims, key, algorithms=[ALGORITHM])


def key_set_from(document: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(document)
