"""Existing customers like the one staff are about to create ("search before create", seed 001): an account with the
same name or e-mail first, then accounts with similar names, most similar first. PostgreSQL ranks names by trigram
similarity (pg_trgm, through the trigram index of migration 0016); SQLite, which has no such index, takes a bounded
set of candidates that share the start of a word and ranks them with difflib."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, text, union
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts.models import Account
from accountdesk.accounts.service import CONTACT_EMAILS, escape_like, readable

SHOWN = 5  # customers the hint lists
RANKED = 20  # similar names ranked per request before the best SHOWN are kept
# How similar a name must be to be shown. A near-duplicate (a typo, a legal form more or less) is 0.6 and up; 0.5
# also keeps the index's candidates few for a common name ("Anna Schmidt" among a million accounts), where pg_trgm's
# default (0.3) brings every "Anna …" and "… Schmidt" to be checked.
PG_MIN_SIMILARITY = 0.5
SQLITE_MIN_RATIO = 0.8  # difflib's ratio of about the same names (it rates shared letters higher than trigrams do)
SQLITE_CANDIDATES = 500  # names SQLite reads to rank in Python
WORD_START = 3  # characters of each word a SQLite candidate must share

@dataclass(frozen=True)
class SimilarAccount:
    account: Account
    score: float  # 1.0 for the same name or e-mail; else the name's similarity, 0 to 1
    same: str  # "email" or "name" for an exact match, "" for a similar name

    @property
    def exact(self) -> bool:
        return bool(self.same)


def same_name(a: str, b: str) -> bool:
    """Names that differ only in letter case and spacing."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def similar_accounts(session: Session, reseller_scope: int | None, name: str, email: str = "", *,
                     also_named: Sequence[str] = (), limit: int = SHOWN) -> list[SimilarAccount]:
    """Up to `limit` accounts the staff user may see that look like the new customer: the same name (`name` or one
    of `also_named`, e.g. the person's beside the company's) or the same e-mail (the account's or one of its
    contacts') first, then the names most similar to `name`."""
    name = " ".join(name.split())
    names = list(dict.fromkeys(n for n in (name, *(" ".join(o.split()) for o in also_named)) if n))
    email = email.strip().lower()
    if not names and not email:
        return []
    scores = _similar_names(session, reseller_scope, name) if name else {}
    exact = _exact_matches(session, reseller_scope, names, email)
    ids = [*exact, *sorted(set(scores) - set(exact), key=lambda i: -scores[i])][:RANKED]
    rows = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids))
                                             .options(selectinload(Account.addresses)))} if ids else {}
    found = [SimilarAccount(rows[i], 1.0 if i in exact else scores[i], exact.get(i, "")) for i in ids if i in rows]
    return sorted(found, key=lambda s: (not s.exact, -s.score, s.account.name.casefold(), s.account.id))[:limit]


def _exact_matches(session: Session, reseller_scope: int | None, names: list[str], email: str) -> dict[int, str]:
    """{account id: "name" or "email"} for the accounts named so (their search text begins with the lower-cased
    name and a space) or with the e-mail (theirs or a contact's), through indexes on PostgreSQL (the search text's
    trigram index, the contacts' e-mail index)."""
    found: list[Select[tuple[int, str]]] = [
        _labelled(Account.id, "name").where(Account.search_text.like(escape_like(name.lower()) + " %", escape="\\"))
        for name in names]
    if email:
        found.append(_labelled(Account.id, "email").where(
            Account.search_text.like(f"%{escape_like(email)}%", escape="\\"), Account.email == email))
        found.append(_labelled(CONTACT_EMAILS.c.account_id, "email").where(CONTACT_EMAILS.c.email == email))
    matches = union(*found).subquery() if len(found) > 1 else found[0].subquery()
    stmt = readable(reseller_scope).with_only_columns(Account.id, Account.name, matches.c.same) \
        .join(matches, matches.c.id == Account.id).order_by(Account.id).limit(RANKED)
    exact: dict[int, str] = {}
    for row in session.execute(stmt):
        # a search text that merely begins with the name ("Anna Schmidt W000001 …" for "Anna Schmidt") is no match
        if any(same_name(row.name, name) for name in names):
            exact[row.id] = "name"
        elif row.same == "email":
            exact.setdefault(row.id, "email")
    return exact


def _labelled(account_id: Any, same: str) -> Select[tuple[int, str]]:
    return select(account_id.label("id"), literal(same).label("same"))


def _similar_names(session: Session, reseller_scope: int | None, name: str) -> dict[int, float]:
    """{account id: similarity of its name to `name`} for the RANKED most similar names."""
    if session.get_bind().dialect.name == "postgresql":
        score = func.similarity(Account.name, name).label("score")
        stmt = readable(reseller_scope).with_only_columns(Account.id, score).where(Account.name.op("%")(name)) \
            .order_by(score.desc(), Account.id).limit(RANKED)
        session.execute(text(f"SET LOCAL pg_trgm.similarity_threshold = {PG_MIN_SIMILARITY}"))
        try:
            return {row.id: float(row.score) for row in session.execute(stmt)}
        finally:
            session.execute(text("SET LOCAL pg_trgm.similarity_threshold TO DEFAULT"))
    starts = {escape_like(word[:WORD_START].lower()) for word in name.split() if len(word) >= 2}
    if not starts:
        return {}
    stmt = readable(reseller_scope).with_only_columns(Account.id, Account.name) \
        .where(or_(*(Account.search_text.like(f"%{start}%", escape="\\") for start in starts))) \
        .limit(SQLITE_CANDIDATES)
    scored = {row.id: _ratio(row.name, name) for row in session.execute(stmt)}
    best = sorted((i for i, s in scored.items() if s >= SQLITE_MIN_RATIO), key=lambda i: -scored[i])[:RANKED]
    return {i: scored[i] for i in best}


def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a.casefold(), b.casefold()).ratio()
