"""The rules for accounts: who may see which, numbering, search, changes with history, addresses, attributes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Select, column, func, literal_column, or_, select, table, text
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts.models import (
    Account,
    AccountKind,
    AccountStatus,
    Address,
    AttributeType,
    CustomAttributeDefinition,
    CustomAttributeValue,
    Invoice,
    SavedPaymentMethod,
)
from accountdesk.core import audit, sequences, validation
from accountdesk.core.audit import Actor
from accountdesk.core.errors import NotFound, ValidationFailed, field_error
from accountdesk.core.i18n import _l
from accountdesk.core.models import AuditEvent
from accountdesk.staff.service import as_seen_by
from accountdesk.webhooks import events as webhooks

DEFAULT_PREFIX = "W"
SEARCH_TEXT_MAX = 1_000  # characters; a b-tree entry holds at most ~2,700 bytes
MATCH_CAP = 5_000  # matches counted exactly and sorted from their ids; more is reported as "5,000+"
# sort name -> ((column, descending), ...); the columns exist on the accounts table and on the matches below
SORTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "name": (("name", False), ("id", False)),
    "-name": (("name", True), ("id", True)),
    "number": (("number", False),),
    "-number": (("number", True),),
    "created_at": (("id", False),),
    "-created_at": (("id", True),),
}
# The search also finds an account by its contacts' e-mails. The contacts package is built on this one, so they are
# read from the contacts table by name rather than through its model.
CONTACT_EMAILS = table("contacts", column("account_id"), column("email"))


def readable(reseller_scope: int | None) -> Select[tuple[Account]]:
    """Accounts a staff user may see: everything for operator staff, only its customers for a reseller."""
    stmt = select(Account)
    if reseller_scope is not None:
        stmt = stmt.where(Account.parent_reseller_id == reseller_scope)
    return stmt


# Named by table, not by model: a storefront belongs to a reseller account (or to the operator), and accounts do not
# import the storefronts package that builds on them.
# What a new account opened on a storefront takes from the storefront's policy, whoever opens it (staff, a
# registration, a reseller's new customer, an instant account under the ERP's own data): account field <- column.
# An account opened on a reseller's storefront is that reseller's customer.
STOREFRONT_DEFAULTS = {"parent_reseller_id": "reseller_account_id", "payment_method": "default_payment_method",
                       "payment_terms": "default_payment_terms", "prorate_billing": "default_prorate_billing",
                       "billing_day": "default_billing_day",
                       "partial_charges_invoicing": "default_partial_charges_invoicing",
                       "auto_invoice_email": "default_auto_invoice_email", "currency": "default_currency",
                       "customer_group": "default_customer_group", "price_group": "default_price_group",
                       "rep_code": "default_rep_code", "preferred_language": "default_language"}
_FLAGS = ("default_prorate_billing", "default_auto_invoice_email")  # typed, so that SQLite's 0/1 read as booleans
_STOREFRONTS = table("storefronts", column("id"), column("name"),
                     *(column(name, Boolean) if name in _FLAGS else column(name)
                       for name in STOREFRONT_DEFAULTS.values()))


def usable_storefronts(reseller_scope: int | None) -> Select[Any]:
    """Ids of the storefronts a staff user may put accounts and contacts on: every one for operator staff, only
    its own reseller's for reseller staff (never the operator's nor another reseller's)."""
    stmt = select(_STOREFRONTS.c.id)
    if reseller_scope is not None:
        stmt = stmt.where(_STOREFRONTS.c.reseller_account_id == reseller_scope)
    return stmt


def storefront_choices(session: Session, reseller_scope: int | None, current: int | None = None,
                       ) -> list[tuple[int, str]]:
    """(id, name) of the storefronts a staff user may put an account on (usable_storefronts), by name, and the
    account's `current` one, which it may keep."""
    usable = _STOREFRONTS.c.id.in_(usable_storefronts(reseller_scope))
    stmt = select(_STOREFRONTS.c.id, _STOREFRONTS.c.name).where(
        or_(usable, _STOREFRONTS.c.id == current) if current else usable).order_by(_STOREFRONTS.c.name,
                                                                                   _STOREFRONTS.c.id)
    return [(row.id, row.name) for row in session.execute(stmt)]


def check_storefront(session: Session, reseller_scope: int | None, storefront_id: int | None) -> None:
    """A storefront named in a request: outside the caller's scope it is refused exactly like one that does not
    exist (422 on `storefront_id`)."""
    if storefront_id is None:
        return
    if session.scalar(usable_storefronts(reseller_scope).where(_STOREFRONTS.c.id == storefront_id)) is None:
        raise field_error("storefront_id", "No such storefront.")


def storefront_defaults(session: Session, reseller_scope: int | None, storefront_id: int | None) -> dict[str, Any]:
    """The fields a new account on the storefront takes from its policy (STOREFRONT_DEFAULTS), with its id; a
    storefront outside the caller's scope is refused like check_storefront does."""
    if storefront_id is None:
        return {}
    columns = [_STOREFRONTS.c[name] for name in STOREFRONT_DEFAULTS.values()]
    stmt = select(*columns).where(_STOREFRONTS.c.id == storefront_id)
    if reseller_scope is not None:
        stmt = stmt.where(_STOREFRONTS.c.reseller_account_id == reseller_scope)
    row = session.execute(stmt).one_or_none()
    if row is None:
        raise field_error("storefront_id", "No such storefront.")
    return {"storefront_id": storefront_id, **dict(zip(STOREFRONT_DEFAULTS, row, strict=True))}


def storefront_defaults_of(storefront: Any) -> dict[str, Any]:
    """The same as `storefront_defaults`, read from a storefront the caller already holds (no query)."""
    return {"storefront_id": storefront.id,
            **{field: getattr(storefront, name) for field, name in STOREFRONT_DEFAULTS.items()}}


def get_account(session: Session, reseller_scope: int | None, account_id: int, *, lock: bool = False) -> Account:
    """The account, or 404 exactly as for an id that does not exist when it is outside the caller's scope."""
    stmt = readable(reseller_scope).where(Account.id == account_id).options(selectinload(Account.addresses))
    if lock:
        stmt = stmt.with_for_update()
    account = session.scalar(stmt)
    if account is None:
        raise NotFound("No such account.", code="account_not_found")
    return account


def next_account_number(session: Session, prefix: str = DEFAULT_PREFIX) -> str:
    prefix = prefix or DEFAULT_PREFIX
    return f"{prefix}{sequences.next_value(session, f'account:{prefix}'):06d}"


def next_account_numbers(session: Session, prefix: str, count: int, *, reserve: bool = True) -> list[str]:
    """`count` numbers at once (a bulk import); without `reserve` (a dry run) the ones a real run would likely
    get, none taken."""
    prefix = prefix or DEFAULT_PREFIX
    name = f"account:{prefix}"
    last = sequences.next_value(session, name, count) if reserve else sequences.peek(session, name) + count
    return [f"{prefix}{n:06d}" for n in range(last - count + 1, last + 1)]


def escape_like(text: str) -> str:
    """Text to match literally in a LIKE pattern with `escape="\\"`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_terms(query: str) -> list[str]:
    return [f"%{word}%" for word in escape_like(query.lower()).split()][:8]


# pg_trgm reads only letters and digits as parts of words, so for "ffice@b" the trigram index of the search text
# offers every account with "office" and a word starting with "b", tens of thousands of rows to read and recheck.
# A second trigram index (migration 0022, PostgreSQL) is on the search text with these marks written as letters,
# where an e-mail is one word: a search word holding a mark is looked up there with the same marks rewritten (the
# rewritten text holds it wherever the text holds the word, so no match is lost), then found as typed.
WORD_MARKS = (("@", "\u0250"), (".", "\u0257"), ("-", "\u0266"))  # "ɐ", "ɗ", "ɦ": letters hardly any text holds


def _marked(expression: Any) -> Any:
    for mark, letter in WORD_MARKS:
        expression = func.replace(expression, literal_column(f"'{mark}'"), literal_column(f"'{letter}'"))
    return expression


SEARCH_WORDS = _marked(Account.__table__.c.search_text)  # the indexed expression, exactly as migration 0022 has it
_MARKS_AS_LETTERS = str.maketrans(dict(WORD_MARKS))


def matches_words(query: str, dialect: str) -> list[ColumnElement[bool]]:
    """Conditions of the account search: every word of the query in the account's search text.

    On PostgreSQL a word with a mark (WORD_MARKS) is two conditions: the index of the marked text, then the word as
    typed with strpos, which no index answers (a LIKE would draw the plain trigram index into the plan as well,
    reading its thousands of candidates for nothing). Every other word is one LIKE, answered by the plain trigram
    index: checked against the marked text instead, each of the thousands of rows a common word reads would pay for
    rewriting the marks."""
    conditions: list[ColumnElement[bool]] = []
    for word, term in zip(query.lower().split(), like_terms(query), strict=False):
        if dialect == "postgresql" and any(mark in word for mark, _ in WORD_MARKS):
            conditions += [SEARCH_WORDS.like(term.translate(_MARKS_AS_LETTERS), escape="\\"),
                           func.strpos(Account.search_text, word) > 0]
        else:
            conditions.append(Account.search_text.like(term, escape="\\"))
    return conditions


@dataclass
class SearchResult:
    items: list[Account]
    total: int
    total_is_exact: bool


def search(session: Session, reseller_scope: int | None, *, q: str = "", status: str | None = None,
           kind: str | None = None, customer_group: str | None = None, sort: str = "name", page: int = 1,
           per_page: int = 25) -> SearchResult:
    """Partial, case-insensitive search over name, number, e-mails, phone and city; every word must match."""
    stmt = readable(reseller_scope).where(*matches_words(q, session.get_bind().dialect.name))
    if status:
        stmt = stmt.where(Account.status == status)
    if kind:
        stmt = stmt.where(Account.kind == kind)
    if customer_group:
        stmt = stmt.where(Account.customer_group == customer_group)
    return paged(session, stmt, SORTS.get(sort, SORTS["name"]), page, per_page, narrowing=bool(q.split()))


def paged(session: Session, stmt: Select[tuple[Account]], sort: tuple[tuple[str, bool], ...], page: int,
          per_page: int, *, narrowing: bool) -> SearchResult:
    """One page of accounts in order, and how many there are (exact up to MATCH_CAP).

    With search words, up to MATCH_CAP matches are first collected through the trigram index and the page is
    sorted from those alone: exact and fast whatever the planner guesses a LIKE matches. Only a term with more
    matches than that walks the sort order's index, where the matches are dense enough to fill a page quickly."""
    if narrowing:
        columns = {Account.id, *(getattr(Account, name) for name, _ in sort)}
        matches = stmt.with_only_columns(*columns).limit(MATCH_CAP + 1).cte("matches").prefix_with("MATERIALIZED")
        count = select(func.count()).select_from(matches).scalar_subquery()  # once, then the page is sorted
        # PostgreSQL would read a common word's matches from the table a row at a time, where the trigram index
        # hands it only the candidates; a word that index cannot answer (fewer than three letters) is then read
        # along the name index, up to MATCH_CAP + 1 matches as from the table
        with _planned(session, COLLECT):
            found = session.execute(select(matches.c.id, count).order_by(*_order(matches.c, sort))
                                    .limit(per_page).offset((page - 1) * per_page)).all()
            total = found[0][1] if found else session.scalar(select(func.count()).select_from(matches)) or 0
        if total <= MATCH_CAP:
            return SearchResult(_by_ids(session, [row[0] for row in found]), total, True)
        return SearchResult(_walk(session, stmt, sort, page, per_page), MATCH_CAP, False)
    ids = stmt.with_only_columns(Account.id).limit(MATCH_CAP + 1)
    total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    return SearchResult(_page(session, stmt, sort, page, per_page), min(total, MATCH_CAP), total <= MATCH_CAP)


def _order(columns: Any, sort: tuple[tuple[str, bool], ...]) -> list[Any]:
    return [columns[name].desc() if descending else columns[name].asc() for name, descending in sort]


def _page(session: Session, stmt: Select[tuple[Account]], sort: tuple[tuple[str, bool], ...], page: int,
          per_page: int) -> list[Account]:
    return list(session.scalars(stmt.order_by(*_order(Account.__table__.c, sort)).limit(per_page)
                                .offset((page - 1) * per_page).options(selectinload(Account.addresses))))


def _walk(session: Session, stmt: Select[tuple[Account]], sort: tuple[tuple[str, bool], ...], page: int,
          per_page: int) -> list[Account]:
    """A page of a common term along the sort index, ids only. PostgreSQL under-estimates how many rows a LIKE
    matches (the more so for a word with a mark, two conditions: see matches_words) and would rather fetch them all
    through the trigram bitmap or the whole table and sort; for this one query it may not, nor split it between
    parallel workers: their start costs more than the walk, which stops after one page."""
    ids = stmt.with_only_columns(Account.id).order_by(*_order(Account.__table__.c, sort)).limit(per_page) \
        .offset((page - 1) * per_page)
    with _planned(session, WALK):
        found = list(session.scalars(ids))  # an index-only scan of (name, id) INCLUDE (search_text)
    return _by_ids(session, found)


COLLECT = {"enable_seqscan": "off"}
WALK = {"enable_bitmapscan": "off", "enable_seqscan": "off", "max_parallel_workers_per_gather": "0"}


@contextmanager
def _planned(session: Session, settings: dict[str, str]) -> Iterator[None]:
    """PostgreSQL plans the statements inside with these settings, in this transaction only: the values before are
    read first (a materialized CTE) and restored after. Other databases have none."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = session.execute(text(
        "WITH before AS MATERIALIZED (SELECT " + ", ".join(f"current_setting('{name}') AS {name}" for name in settings)
        + ") SELECT " + ", ".join(settings) + ", "
        + ", ".join(f"set_config('{name}', '{value}', true)" for name, value in settings.items()) + " FROM before")
    ).one()
    try:
        yield
    finally:
        session.execute(text("SELECT " + ", ".join(f"set_config('{name}', :{name}, true)" for name in settings)),
                        {name: before[i] for i, name in enumerate(settings)})


def _by_ids(session: Session, ids: list[int]) -> list[Account]:
    if not ids:
        return []
    rows = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(ids))
                                               .options(selectinload(Account.addresses)))}
    return [rows[i] for i in ids]


def search_text_for(name: str, number: str, email: str = "", phone: str = "", erp_code: str | None = None,
                    cities: list[str] | tuple[str, ...] = (), emails: list[str] | tuple[str, ...] = ()) -> str:
    """The lower-cased text the account search looks in (bulk loaders call this too). It is capped so that it fits
    in the name index entry: an account's own fields always fit; contacts' e-mails beyond the cap are not searched."""
    phone_digits = "".join(c for c in phone if c.isdigit())
    parts = [name, number, email, phone, phone_digits, erp_code or "", *cities, *emails]
    return " ".join(p.lower() for p in parts if p)[:SEARCH_TEXT_MAX]


def reindex(session: Session, account: Account, emails: Sequence[str] | None = None) -> None:
    """Refresh the one column the search looks at, from the account, its city and its contacts' e-mails (a new
    account, not yet flushed, has none), read here unless the caller knows them all (`emails`)."""
    if emails is None:
        query = select(CONTACT_EMAILS.c.email).where(CONTACT_EMAILS.c.account_id == account.id)
        emails = session.scalars(query).all() if account.id else []
    text = search_text_for(account.name, account.number, account.email or "", account.phone or "", account.erp_code,
                           [a.city for a in account.addresses], emails)
    if text != account.search_text:  # the same text set again would still make the commit flush the account
        account.search_text = text


def _check_parent(session: Session, parent_id: int | None) -> None:
    if parent_id is None:
        return
    parent = session.get(Account, parent_id)
    if parent is None or parent.kind != AccountKind.reseller:
        raise field_error("parent_reseller_id", "Choose a reseller account as the parent.")


def _distributor_managed(field: str) -> ValidationFailed:
    return field_error(field, "Your distributor manages this field.", code="field_not_editable")


def normalise_phone(value: str, country: str | None) -> str:
    """An account's or a contact's phone: E.164, read in the billing address's country (Account.billing_country)."""
    try:
        return validation.normalise_phone(value, country)
    except ValueError as exc:
        raise field_error("phone", validation.reason(exc)) from exc


def create_account(session: Session, actor: Actor, reseller_scope: int | None, data: dict[str, Any], *,
                   billing_address: dict[str, Any] | None = None, number_prefix: str = DEFAULT_PREFIX,
                   storefront: Any = None, contact_emails: Sequence[str] = ()) -> Account:
    """A new account; on a storefront (`storefront_id`) it takes the storefront's defaults for what `data` leaves
    out, read from `storefront` when the caller holds it. `contact_emails`: those of the contacts the caller adds
    next, so that the search text is complete from the INSERT on (see contacts.service.create_contact)."""
    data = {k: v for k, v in data.items() if v is not None}
    if data.get("phone") and not data.get("phone_as_given"):  # an ERP phone that could not be read stays as given
        data["phone"] = normalise_phone(data["phone"], (billing_address or {}).get("country"))
    attributes = data.pop("attributes", None) or {}
    if reseller_scope is not None:
        if data.get("parent_reseller_id", reseller_scope) != reseller_scope:
            raise _distributor_managed("parent_reseller_id")
        if "erp_code" in data:  # an ERP code names the distributor's ERP customer (its finances, its contacts)
            raise _distributor_managed("erp_code")
        data["parent_reseller_id"] = reseller_scope  # reseller staff create their own customers only
        if data.get("kind") == AccountKind.reseller:
            raise field_error("kind", "Only your distributor can create reseller accounts.")
    _check_parent(session, data.get("parent_reseller_id"))
    if storefront is not None and storefront.id == data.get("storefront_id") and reseller_scope in (
            None, storefront.reseller_account_id):
        defaults = storefront_defaults_of(storefront)
    else:
        defaults = storefront_defaults(session, reseller_scope, data.get("storefront_id"))
    data = {**{k: v for k, v in defaults.items() if v is not None}, **data}
    number = data.pop("number", None) or next_account_number(session, number_prefix)
    account = Account(number=number, **data)
    if billing_address:
        account.addresses.append(Address(**{**billing_address, "is_billing": True}))
    reindex(session, account, contact_emails)  # before the INSERT, which then carries the search text
    session.add(account)
    session.flush()
    attribute_changes = set_attributes(session, account, attributes, required_check=True, new=True)
    webhooks.account_event(session, "account.created", account)  # before the audit row: nothing for it to flush
    # recorded last, so that a first contact created next (note_first_contact) joins it before it is written
    event = audit.record(session, actor, "account.created", subject_type="account", subject_id=account.id,
                         account_id=account.id, changes={**audit.created({**data, "number": number}),
                                                         **_grouped("billing_address", billing_address or {}),
                                                         **attribute_changes})
    _creations(session)[account.id] = event
    return account


def _grouped(group: str, values: dict[str, Any]) -> dict[str, list[Any]]:
    """A part of a new account (its billing address, its first contact) in the creation's history entry, each
    field under "<group>.<field>"; what was left empty is left out."""
    return {f"{group}.{name}": change for name, change in audit.created(values).items()
            if change[1] not in (None, "", False)}


CREATIONS = "accounts_created"  # session.info: (transaction, {account id: its "account.created" event})


def _creations(session: Session) -> dict[int, AuditEvent]:
    """The creation events of the accounts created in the session's current transaction."""
    transaction = session.get_transaction()
    kept_for, events = session.info.get(CREATIONS, (None, {}))
    if kept_for is not transaction:
        events = {}
        session.info[CREATIONS] = (transaction, events)
    return events


def note_first_contact(session: Session, account: Account, values: dict[str, Any]) -> None:
    """A contact created with its account (a registration, an instant account, an import) is part of the account's
    creation: its fields go into that history entry as "first_contact.<field>". A contact added later does not."""
    event = _creations(session).get(account.id)
    if event is None or any(name.startswith("first_contact.") for name in event.changes):
        return
    event.changes = {**event.changes, **_grouped("first_contact", values)}


def update_account(session: Session, actor: Actor, account: Account, data: dict[str, Any],
                   reseller_scope: int | None = None) -> dict[str, list[Any]]:
    data = dict(data)
    attributes = data.pop("attributes", None)
    if reseller_scope is not None:
        for field in ("parent_reseller_id", "kind", "erp_code"):
            if field in data:
                raise _distributor_managed(field)
    if "parent_reseller_id" in data:
        _check_parent(session, data["parent_reseller_id"])
    if data.get("storefront_id") != account.storefront_id:  # the one it has may stay, whoever's it is
        check_storefront(session, reseller_scope, data.get("storefront_id"))
    if "name" in data and not data["name"]:
        raise field_error("name", "Enter the account name.")
    if data.get("phone") and data["phone"] != account.phone:  # a phone sent back unchanged is not checked again
        data["phone"] = normalise_phone(data["phone"], account.billing_country)
        data["phone_as_given"] = False
    changes = audit.apply_changes(account, data)
    if attributes is not None:
        changes |= set_attributes(session, account, attributes)
    if changes:
        session.flush()
        reindex(session, account)
        action = "account.updated"
        if set(changes) == {"status"}:
            action = "account.activated" if account.status == AccountStatus.active else "account.deactivated"
        audit.record(session, actor, action, subject_type="account", subject_id=account.id, account_id=account.id,
                     changes=changes)
        webhooks.account_event(session, "account.deactivated" if action == "account.deactivated" else
                               "account.updated", account)
    return changes


# --- custom attributes ---------------------------------------------------------------------------------------

DEFINITIONS = select(CustomAttributeDefinition).order_by(CustomAttributeDefinition.position,
                                                         CustomAttributeDefinition.id)  # built once: every new account


def definitions(session: Session) -> list[CustomAttributeDefinition]:
    return list(session.scalars(DEFINITIONS))


def parse_attribute(definition: CustomAttributeDefinition, raw: Any) -> str | None:
    """The canonical text of a typed value; ValueError with a readable message when it does not fit the type."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    match definition.type:
        case AttributeType.number:
            try:
                number = Decimal(text)
            except InvalidOperation as exc:
                raise ValueError(_l("Enter a number.")) from exc
            if not number.is_finite():
                raise ValueError(_l("Enter a number."))
            return str(number)
        case AttributeType.date:
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError as exc:
                raise ValueError(_l("Enter a date as YYYY-MM-DD.")) from exc
        case AttributeType.boolean:
            lowered = text.lower()
            if lowered in ("true", "1", "yes", "on"):
                return "true"
            if lowered in ("false", "0", "no", "off"):
                return "false"
            raise ValueError(_l("Choose yes or no."))
        case AttributeType.choice:
            if text not in definition.choices:
                raise ValueError(_l("Choose one of: %(choices)s.", choices=", ".join(definition.choices)))
            return text
        case _:
            if len(text) > 2000:
                raise ValueError(_l("Use at most %(count)s characters.", count=2000))
            return text


def typed_value(definition: CustomAttributeDefinition, text: str) -> Any:
    match definition.type:
        case AttributeType.number:
            return float(text) if "." in text or "E" in text else int(text)
        case AttributeType.boolean:
            return text == "true"
        case _:
            return text


def attribute_values(session: Session, account: Account) -> dict[str, Any]:
    return attribute_values_for(session, [account.id]).get(account.id, {})


def attribute_values_for(session: Session, account_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Typed custom attribute values of several accounts in one query (a page of search results)."""
    values: dict[int, dict[str, Any]] = {}
    rows = session.scalars(select(CustomAttributeValue).where(CustomAttributeValue.account_id.in_(account_ids))) \
        if account_ids else []
    for row in rows:
        values.setdefault(row.account_id, {})[row.definition.key] = typed_value(row.definition, row.value)
    return values


def set_attributes(session: Session, account: Account, values: dict[str, Any], *,
                   required_check: bool = False, new: bool = False) -> dict[str, list[Any]]:
    """Set the account's custom attributes (`new`: it has none yet, so none are read)."""
    by_key = {d.key: d for d in definitions(session)}
    errors: dict[str, Any] = {f"attributes.{key}": _l("No such attribute.") for key in values if key not in by_key}
    parsed: dict[str, str | None] = {}
    for key, raw in values.items():
        if key in by_key:
            try:
                parsed[key] = parse_attribute(by_key[key], raw)
            except ValueError as exc:
                errors[f"attributes.{key}"] = validation.reason(exc)
    current = {} if new else {row.definition.key: row for row in session.scalars(
        select(CustomAttributeValue).where(CustomAttributeValue.account_id == account.id))}
    for key, definition in by_key.items():
        missing = parsed.get(key) is None if key in parsed else (required_check and key not in current)
        if definition.required and missing:
            errors.setdefault(f"attributes.{key}", _l("%(label)s is required.", label=definition.label))
    if errors:
        raise ValidationFailed("Some custom attributes need attention.", fields=errors)
    changes: dict[str, list[Any]] = {}
    for key, value in parsed.items():
        row = current.get(key)
        old = row.value if row else None
        if old == value:
            continue
        if value is None and row is not None:
            session.delete(row)
        elif row is None:
            session.add(CustomAttributeValue(account_id=account.id, definition_id=by_key[key].id, value=value))
        else:
            row.value = value
        changes[f"attributes.{key}"] = [old, value]
    return changes


# --- address book --------------------------------------------------------------------------------------------

def add_address(session: Session, actor: Actor, account: Account, data: dict[str, Any]) -> Address:
    if data.get("is_billing"):
        for other in account.addresses:
            other.is_billing = False
    address = Address(**data)
    account.addresses.append(address)
    session.flush()
    reindex(session, account)
    audit.record(session, actor, "address.added", subject_type="address", subject_id=address.id,
                 account_id=account.id, changes=audit.created(data))
    return address


def address_of(account: Account, address_id: int) -> Address:
    address = next((a for a in account.addresses if a.id == address_id), None)
    if address is None:
        raise NotFound("No such address on this account.", code="address_not_found")
    return address


def update_address(session: Session, actor: Actor, account: Account, address_id: int, data: dict[str, Any]) -> Address:
    address = address_of(account, address_id)
    if data.get("is_billing"):
        for other in account.addresses:
            other.is_billing = other is address
    changes = audit.apply_changes(address, data)
    if changes:
        session.flush()
        reindex(session, account)
        audit.record(session, actor, "address.updated", subject_type="address", subject_id=address.id,
                     account_id=account.id, changes=changes)
    return address


def delete_address(session: Session, actor: Actor, account: Account, address_id: int) -> None:
    address = address_of(account, address_id)
    account.addresses.remove(address)
    session.flush()
    reindex(session, account)
    audit.record(session, actor, "address.deleted", subject_type="address", subject_id=address_id,
                 account_id=account.id, changes={"line1": [address.line1, None], "city": [address.city, None]})


# --- saved payment methods ----------------------------------------------------------------------------------

# A method may belong to one of the account's contacts; the contacts package builds on this one, hence the table.
CONTACT_NAMES = table("contacts", column("id"), column("account_id"), column("first_name"), column("last_name"))


def payment_methods(session: Session, account: Account) -> list[SavedPaymentMethod]:
    return list(session.scalars(select(SavedPaymentMethod).where(SavedPaymentMethod.account_id == account.id)
                                .order_by(SavedPaymentMethod.id)))


def get_payment_method(session: Session, account: Account, method_id: int) -> SavedPaymentMethod:
    method = session.scalar(select(SavedPaymentMethod).where(SavedPaymentMethod.id == method_id,
                                                             SavedPaymentMethod.account_id == account.id))
    if method is None:
        raise NotFound(_l("No such saved payment method on this account."), code="payment_method_not_found")
    return method


def _recognisable(method: SavedPaymentMethod) -> dict[str, Any]:
    """What the history keeps of a method: enough to recognise the card, not the provider's token."""
    return {"provider": method.provider, "brand": method.brand, "last4": method.last4,
            "expiry": f"{method.expiry_month:02d}/{method.expiry_year}"}


def add_payment_method(session: Session, actor: Actor, account: Account, data: dict[str, Any]) -> SavedPaymentMethod:
    """Keep a reference to a method the payment provider stores (a card number never reaches this far: the
    schema refuses it). A second save of the same provider token is a 409 `duplicate`."""
    contact_id = data.get("contact_id")
    if contact_id is not None and session.scalar(select(CONTACT_NAMES.c.id).where(
            CONTACT_NAMES.c.id == contact_id, CONTACT_NAMES.c.account_id == account.id)) is None:
        raise field_error("contact_id", _l("No such contact on this account."))
    method = SavedPaymentMethod(account_id=account.id, **data)
    session.add(method)
    session.flush()
    audit.record(session, actor, "payment_method.added", subject_type="payment_method", subject_id=method.id,
                 account_id=account.id, changes=audit.created(_recognisable(method)))
    return method


def delete_payment_method(session: Session, actor: Actor, account: Account, method_id: int) -> SavedPaymentMethod:
    """Forget the reference (the provider keeps the card until it is removed there)."""
    method = get_payment_method(session, account, method_id)
    session.delete(method)
    session.flush()
    audit.record(session, actor, "payment_method.deleted", subject_type="payment_method", subject_id=method_id,
                 account_id=account.id, changes={k: [v, None] for k, v in _recognisable(method).items()})
    return method


def payment_method_owners(session: Session, methods: list[SavedPaymentMethod]) -> dict[int, str]:
    """The names of the contacts the methods belong to, by contact id."""
    ids = {m.contact_id for m in methods if m.contact_id is not None}
    rows = session.execute(select(CONTACT_NAMES.c.id, CONTACT_NAMES.c.first_name, CONTACT_NAMES.c.last_name)
                           .where(CONTACT_NAMES.c.id.in_(ids))) if ids else []
    return {row.id: f"{row.first_name} {row.last_name}" for row in rows}


# --- invoices and history ------------------------------------------------------------------------------------

def record_invoice(session: Session, actor: Actor, account: Account, data: dict[str, Any]) -> Invoice:
    invoice = Invoice(account_id=account.id, **data)
    session.add(invoice)
    session.flush()
    audit.record(session, actor, "invoice.recorded", subject_type="invoice", subject_id=invoice.id,
                 account_id=account.id, changes={"number": [None, invoice.number]})
    return invoice


def invoices(session: Session, account: Account) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.account_id == account.id)
                                .order_by(Invoice.issued_on.desc(), Invoice.id.desc())))


def events(session: Session, reseller_scope: int | None, account: Account, limit: int = 200) -> list[Any]:
    """The account's history, newest first, as the caller may read it (staff.service.as_seen_by)."""
    found = list(session.scalars(select(AuditEvent).where(AuditEvent.account_id == account.id)
                                 .order_by(AuditEvent.id.desc()).limit(limit)))
    return as_seen_by(session, reseller_scope, found)


def describe(session: Session, account: Account, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The account as the API shows it: fields, addresses and typed custom attributes."""
    from accountdesk.accounts.schemas import AccountOut

    out = AccountOut.model_validate(account)
    out.attributes = attribute_values(session, account) if attributes is None else attributes
    return out.model_dump(mode="json")


def describe_all(session: Session, accounts: list[Account]) -> list[dict[str, Any]]:
    attributes = attribute_values_for(session, [a.id for a in accounts])
    return [describe(session, a, attributes.get(a.id, {})) for a in accounts]
