"""Importing a customer file: every row checked as the forms check it, matched to what is stored (account number,
ERP code or e-mail on the storefront), then written a chunk at a time in one transaction that commits only when the
run is real and the file is good (or good rows only were asked for). A dry run is the very same run, rolled back.

A chunk is checked row by row without the database, matched with a few batched look-ups, and its new accounts,
addresses, attribute values, contacts and their history go in with one multi-row INSERT per table. Changes to
stored records (rare: "update existing") go through the accounts and contacts services, as the forms' do."""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ARRAY, Result, and_, any_, bindparam, func, literal_column, or_, select
from sqlalchemy.orm import Session, selectinload

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, Address, CustomAttributeDefinition, CustomAttributeValue
from accountdesk.contacts import service as contacts
from accountdesk.contacts.models import Contact, ContactStatus
from accountdesk.core import audit
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database, serialise, utcnow
from accountdesk.core.errors import NotFound, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.models import AuditEvent
from accountdesk.core.settings import Settings
from accountdesk.imports.bulk import JsonText, Writer, insert_rows, take_ids
from accountdesk.imports.checks import ADDRESS_FIELDS, STATUSES, Row, check_row, header_problems, read_phone
from accountdesk.imports.columns import ATTRIBUTE_PREFIX, file_format, read_rows
from accountdesk.imports.models import Import, ImportStatus
from accountdesk.storefronts.models import Storefront

CHUNK = 2000  # rows per batch of look-ups and INSERTs
PART = 250  # rows a worker process checks at a time: the importing process may take on the parts no worker has begun
# Python's cycle collector runs after every 700 new containers by default; a chunk's rows, records and their history
# are hundreds of thousands of them, each living through several collections, and the full collections they set off
# walk every object of the process: about a quarter of an import's CPU. Less often suffices (see fewer_collections).
COLLECT_AFTER = 50_000
KEPT_ROWS = 500  # rows kept for the report: the first few, then those with a message
SHOWN_ROWS = 20
# a row's outcome, and its words in a report (the console's import page, the command line's)
OUTCOMES: dict[str, Any] = {"created": _l("created"), "updated": _l("updated"), "unchanged": _l("unchanged"),
                            "skipped": _l("left as it is"), "failed": _l("with problems")}
RECORDS = ("accounts_created", "accounts_updated", "addresses_created", "addresses_updated", "contacts_created",
           "contacts_updated", "welcome_emails")
# stored value -> column, to say which columns of a row differ from what is stored
ACCOUNT_COLUMNS = {"name": "account_name", "kind": "account_kind", "status": "account_status",
                   "email": "account_email", "phone": "account_phone", "preferred_language": "account_language",
                   "customer_group": "customer_group", "price_group": "price_group", "rep_code": "rep_code",
                   "payment_method": "payment_method", "payment_terms": "payment_terms", "currency": "currency",
                   "erp_code": "erp_code"}
CONTACT_COLUMNS = {"first_name": "contact_first_name", "last_name": "contact_last_name", "phone": "contact_phone",
                   "language": "contact_language", "date_format": "contact_date_format", "role": "contact_role"}
STORED_ACCOUNT = (Account.id, Account.number, Account.storefront_id, *(getattr(Account, k) for k in ACCOUNT_COLUMNS))
STORED_CONTACT = (Contact.id, Contact.account_id, Contact.storefront_id, Contact.email,
                  *(getattr(Contact, k) for k in CONTACT_COLUMNS))
STORED_ADDRESS = (Address.id, Address.account_id, Address.is_billing, Address.is_shipping,
                  *(getattr(Address, k) for k in ADDRESS_FIELDS))


@dataclass
class Options:
    dry_run: bool = False
    update_existing: bool = False
    good_rows_only: bool = False
    send_welcome: bool = False

    def as_dict(self) -> dict[str, bool]:
        return dict(self.__dict__)


@dataclass
class Report:
    """What a run did (or, dry, would do): rows by outcome, records by kind, and rows to show with their messages."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("rows", *OUTCOMES, *RECORDS), 0))
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)  # about the whole file (its header), as data (i18n.as_data)
    imported: bool = False

    def add(self, row: Row, outcome: str, account: str, messages: list[Any]) -> None:
        self.counts["rows"] += 1
        self.counts[outcome] += 1
        if len(self.rows) < KEPT_ROWS and (outcome == "failed" or messages or len(self.rows) < SHOWN_ROWS):
                self.rows.append({"line": row.line, "outcome": outcome, "account": account,
                                  "contact": row.cells.get("contact_email", ""), "messages": messages})

    def as_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "rows": self.rows, "problems": self.problems, "imported": self.imported}


@dataclass
class Target:
    """The account a group of rows goes to: a stored one (`stored`) or one this chunk creates (`values`)."""

    stored: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    new_addresses: list[dict[str, Any]] = field(default_factory=list)
    new_contacts: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)  # stored account, "update existing"
    address_changes: dict[int, dict[str, Any]] = field(default_factory=dict)
    contact_changes: dict[int, dict[str, Any]] = field(default_factory=dict)
    lines_by_email: dict[str, int] = field(default_factory=dict)
    id: int | None = None
    has_good_rows: bool = False  # only then is it written: a failed row changes nothing, whatever its account

    @property
    def label(self) -> str:
        data = self.stored or self.values or {}
        return data.get("number") or data.get("name", "")


@dataclass
class Run:
    session: Session
    settings: Settings
    storefront: Storefront
    options: Options
    actor: Actor
    note: str
    definitions: dict[str, CustomAttributeDefinition]
    report: Report
    welcome_at: datetime
    welcome_step: timedelta

    def __post_init__(self) -> None:
        self.account_defaults = accounts.storefront_defaults_of(self.storefront)  # what every new account starts from

    def history_of_new(self, action: str, subject_type: str, subject_id: int, account_id: int,
                       values: dict[str, Any]) -> dict[str, Any]:
        """The history row of a record the import creates: every field from nothing to its value (audit.created),
        its change list written as JSON text at once; what every such row has is history_same's."""
        return {"subject_type": subject_type, "subject_id": subject_id, "account_id": account_id, "action": action,
                "changes": JsonText(audit.created_json(values))}

    def history_same(self, now: datetime) -> dict[str, Any]:
        return {"occurred_at": now, "actor_type": self.actor.type, "actor_id": self.actor.id,
                "actor_label": self.actor.label, "note": self.note}


# --- the stored records a chunk's rows may match -------------------------------------------------------------

@dataclass
class Stored:
    storefront_id: int
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    contacts: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    accounts_of_contact: dict[str, list[int]] = field(default_factory=dict)
    addresses: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    attributes: dict[int, dict[int, str]] = field(default_factory=dict)

    def add_account(self, data: dict[str, Any]) -> None:
        if data["id"] in self.accounts:
            return
        self.accounts[data["id"]] = data
        for name in ("number", "erp_code"):
            if data[name]:
                self.by_key.setdefault((name, data[name]), []).append(data["id"])
        if data["email"] and data["storefront_id"] == self.storefront_id:
            self.by_key.setdefault(("email", data["email"]), []).append(data["id"])


def load_stored(session: Session, storefront_id: int, rows: list[Row]) -> Stored:
    """Everything stored that the rows could match, in five look-ups (whatever the number of rows)."""
    stored = Stored(storefront_id)
    among = _among if session.get_bind().dialect.name == "postgresql" else _among_json
    numbers = {r.account["number"] for r in rows if r.account.get("number")}
    codes = {r.account["erp_code"] for r in rows if r.account.get("erp_code")}
    emails = {r.account["email"] for r in rows if r.account.get("email")}
    contact_emails = {r.contact["email"] for r in rows if r.contact and r.contact.get("email")}
    wanted = [among(Account.number, numbers) if numbers else None,
              among(Account.erp_code, codes) if codes else None,
              and_(Account.storefront_id == storefront_id, among(Account.email, emails)) if emails else None]
    if conditions := [c for c in wanted if c is not None]:
        for data in _dicts(session.execute(select(*STORED_ACCOUNT).where(or_(*conditions)))):
            stored.add_account(data)
    if contact_emails:
        # by e-mail alone, the storefront told apart here: SQLite (no statistics) would otherwise read the
        # storefront's every contact by its storefront index
        for data in _dicts(session.execute(select(*STORED_CONTACT).where(among(Contact.email, contact_emails)))):
            if data["storefront_id"] != storefront_id:
                continue
            stored.contacts[data["account_id"], data["email"]] = data
            stored.accounts_of_contact.setdefault(data["email"], []).append(data["account_id"])
        missing = {account_id for account_id, _ in stored.contacts} - set(stored.accounts)
        if missing:
            for data in _dicts(session.execute(select(*STORED_ACCOUNT).where(among(Account.id, missing)))):
                stored.add_account(data)
    if stored.accounts:
        ids = set(stored.accounts)
        for data in _dicts(session.execute(select(*STORED_ADDRESS).where(among(Address.account_id, ids))
                                           .order_by(Address.id))):
            mine = stored.addresses.setdefault(data["account_id"], {})
            if data["is_billing"]:
                mine.setdefault("billing", data)
            elif data["is_shipping"]:
                mine.setdefault("shipping", data)
        query = select(CustomAttributeValue.account_id, CustomAttributeValue.definition_id,
                       CustomAttributeValue.value).where(among(CustomAttributeValue.account_id, ids))
        for account_id, definition_id, value in session.execute(query):
            stored.attributes.setdefault(account_id, {})[definition_id] = value
    return stored


def _among(column: Any, values: set[Any]) -> Any:
    """`column IN values` with the values in one parameter, an array (PostgreSQL): a chunk's look-ups name
    thousands of values, each of which would otherwise be a parameter to render, adapt and parse."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def _among_json(column: Any, values: set[Any]) -> Any:
    """_among on SQLite: the values in one JSON array, read by json_each."""
    return column.in_(select(literal_column("value")).select_from(func.json_each(json.dumps(list(values)))))


def _dicts(result: Result[Any]) -> Iterator[dict[str, Any]]:
    keys = list(result.keys())
    return (dict(zip(keys, row, strict=True)) for row in result)


# --- matching and deciding, row by row -----------------------------------------------------------------------


def _account_problems(row: Row) -> bool:
    return any(not column.startswith("contact_") for column in row.problem_columns)


class Chunk:
    """The rows of one chunk matched to their accounts and contacts, and what writing them will do."""

    def __init__(self, run: Run, rows: list[Row]) -> None:
        self.run, self.rows = run, rows
        self.stored = load_stored(run.session, run.storefront.id, rows)
        self.targets: list[Target] = []
        self.by_key: dict[tuple[str, str], Target] = {}  # this chunk's new accounts by number and ERP code
        self.new_by_email: dict[str, list[Target]] = {}
        self.stored_targets: dict[int, Target] = {}

    def decide(self) -> list[tuple[Row, Target | None, str]]:
        """Each row with its account and outcome; the records to create or change are gathered on the targets."""
        decided = []
        head: Row | None = None
        head_cells: tuple[str, ...] | None = None  # the head's account cells, once a row shares its account
        target: Target | None = None
        for row in self.rows:
            key = row.account_key
            if head is not None and key is not None and key == head.account_key:
                head_cells = head_cells or head.account_cells
                if row.account_cells != head_cells:
                    row.problem("account", _l("The account's columns differ from line %(line)s, which has the "
                                              "same account.", line=head.line))
                elif _account_problems(head):
                    row.problem("account", _l("The account's row, line %(line)s, needs attention.", line=head.line))
                account_outcome = "unchanged"
            else:
                head, head_cells = row, None
                target, account_outcome = self._account(row)
            if _account_problems(row) or target is None:
                decided.append((row, target, "failed"))
                continue
            outcome = self._contact(row, target, account_outcome)
            if row.problems:
                outcome = "failed"
            else:
                target.has_good_rows = True
            decided.append((row, target, outcome))
        return decided

    @property
    def written(self) -> list[Target]:
        """The accounts that at least one good row goes to: those the chunk writes, new or changed."""
        return [t for t in self.targets if t.has_good_rows]

    # accounts

    def _match(self, row: Row) -> Target | None:
        """The account the row names: the one with its number, else its ERP code, else (neither given) its e-mail
        on the storefront, else (no account columns) the one with its contact's e-mail; None: a new one. An e-mail
        is no key beside a number or code: several accounts may share one (a bookkeeper's), and the same file must
        match the same way once its accounts are stored."""
        account = row.account
        if account.get("number") or account.get("erp_code"):
            number, code = (self._keyed(name, account.get(name)) for name in ("number", "erp_code"))
            if account.get("number") and code is not None and code is not number:
                row.problem("erp_code", _l("This ERP code belongs to account %(account)s.", account=code.label))
                return None
            return number or code
        if email := account.get("email"):
            ids, new = self.stored.by_key.get(("email", email), []), self.new_by_email.get(email, [])
            if len(ids) + len(new) > 1:
                row.problem("account_email", _l("%(count)s accounts on this storefront have this e-mail: give the "
                                                "account number or ERP code.", count=len(ids) + len(new)))
                return None
            return new[0] if new else self._stored_target(ids[0]) if ids else None
        if row.contact and row.contact.get("email"):
            ids = self.stored.accounts_of_contact.get(row.contact["email"], [])
            if len(ids) > 1:
                row.problem("contact_email", "This e-mail is a contact of several accounts on the storefront: "
                                             "give the account number.")
                return None
            if ids:
                return self._stored_target(ids[0])
        return None

    def _keyed(self, name: str, value: str | None) -> Target | None:
        """The account with this number or ERP code (each names one account at most): new in this chunk, or stored."""
        if not value:
            return None
        if (name, value) in self.by_key:
            return self.by_key[name, value]
        ids = self.stored.by_key.get((name, value))
        return self._stored_target(ids[0]) if ids else None

    def _stored_target(self, account_id: int) -> Target:
        if account_id not in self.stored_targets:
            target = Target(stored=self.stored.accounts[account_id], id=account_id)
            self.stored_targets[account_id] = target
            self.targets.append(target)
        return self.stored_targets[account_id]

    def _account(self, row: Row) -> tuple[Target | None, str]:
        target = self._match(row)
        if _account_problems(row):
            return None, "failed"
        if target is None:
            return self._new_account(row), "created"
        if target.stored is None:  # created by an earlier row of this chunk
            return target, "unchanged"
        return target, self._compare_account(row, target)

    def _new_account(self, row: Row) -> Target | None:
        run, account = self.run, dict(row.account)
        if not account.get("name"):
            row.problem("account_name", "This field is required.")
        if account.get("status", "active") not in STATUSES:
            row.problem("account_status", "Choose one of the options.")
        for key, definition in run.definitions.items():
            if definition.required and key not in row.attributes:
                row.problem(ATTRIBUTE_PREFIX + key, _l("%(attribute)s is required.", attribute=definition.label))
        if "account_phone" in row.phones_to_read:
            account["phone"] = read_phone(row, "account_phone", None)
        if _account_problems(row):
            return None
        values = {**run.account_defaults, "kind": "b2b", "status": "active", "email": "",
                  "phone": "", "erp_code": None, "number": None, **account}
        target = Target(values=values, attributes=dict(row.attributes),
                        new_addresses=[{**address, "is_billing": kind == "billing", "is_shipping": kind == "shipping"}
                                       for kind, address in row.addresses.items()])
        for name in ("number", "erp_code"):
            if account.get(name):
                self.by_key[name, account[name]] = target
        if account.get("email"):
            self.new_by_email.setdefault(account["email"], []).append(target)
        self.targets.append(target)
        return target

    def _compare_account(self, row: Row, target: Target) -> str:
        stored, account_id = target.stored, target.id
        assert stored is not None and account_id is not None
        addresses = self.stored.addresses.get(account_id, {})
        country = addresses.get("billing", {}).get("country")
        wanted = {k: v for k, v in row.account.items() if k != "number"}
        if "account_phone" in row.phones_to_read:
            wanted["phone"] = read_phone(row, "account_phone", country)
        if wanted.get("status", stored["status"]) not in (*STATUSES, stored["status"]):
            row.problem("account_status", "Choose one of the options.")
        if "erp_code" in wanted and wanted["erp_code"] != stored["erp_code"]:
            row.problem("erp_code", _l("The account's ERP code is %(code)s; map it in the console, which checks "
                                       "the code in the ERP.", code=stored["erp_code"] or _l("not set")))
        if _account_problems(row):
            return "failed"
        changes = {k: v for k, v in wanted.items() if stored[k] != v}
        differ = [ACCOUNT_COLUMNS[k] for k in changes]
        address_changes: dict[int, dict[str, Any]] = {}
        new_addresses = []
        for kind, address in row.addresses.items():
            current = addresses.get(kind)
            if current is None:
                new_addresses.append({**address, "is_billing": kind == "billing", "is_shipping": kind == "shipping"})
                continue
            if moved := {k: v for k, v in address.items() if current[k] != v}:
                address_changes[current["id"]] = moved
                differ += [f"{kind}_{k}" for k in moved]
        attributes = {key: value for key, value in row.attributes.items()
                      if self.stored.attributes.get(account_id, {}).get(self.run.definitions[key].id) != value}
        differ += [ATTRIBUTE_PREFIX + key for key in attributes]
        target.new_addresses += new_addresses
        if differ and not self.run.options.update_existing:
            row.note(_l("Differs from the stored account in %(columns)s; left as it is (import with \"update "
                        "existing\" to change it).", columns=", ".join(differ)))
            return "created" if new_addresses else "skipped"
        target.changes.update(changes)
        target.address_changes.update(address_changes)
        target.attributes.update(attributes)
        if differ:
            return "updated"
        return "created" if new_addresses else "unchanged"

    # contacts

    def _contact(self, row: Row, target: Target, account_outcome: str) -> str:
        if row.contact is None:
            return account_outcome
        contact, email = dict(row.contact), row.contact["email"]
        if email in target.lines_by_email:
            row.problem("contact_email", _l("The same contact is on line %(line)s.",
                                            line=target.lines_by_email[email]))
            return "failed"
        target.lines_by_email[email] = row.line
        stored = self.stored.contacts.get((target.id, email)) if target.id is not None else None
        if "contact_phone" in row.phones_to_read:
            billing = self.stored.addresses.get(target.id or 0, {}).get("billing", {})
            contact["phone"] = read_phone(row, "contact_phone", billing.get("country"))
        if stored is None:
            for column, name in (("contact_first_name", "first_name"), ("contact_last_name", "last_name"),
                                 ("contact_phone", "phone")):
                if not contact.get(name) and column not in row.problem_columns:
                    row.problem(column, "This field is required.")
            if row.problems:
                return "failed"
            language = (target.values or target.stored or {}).get("preferred_language")
            target.new_contacts.append({"first_name": "", "last_name": "", "phone": "", "date_format": "DD/MM/YYYY",
                                        "role": "buyer", "language": language or "en", **contact})
            return "created"
        if row.problems:
            return "failed"
        changes = {k: v for k, v in contact.items() if k != "email" and stored[k] != v}
        if not changes:
            return account_outcome
        if not self.run.options.update_existing:
            row.note(_l("The contact differs in %(columns)s; left as it is.",
                        columns=", ".join(CONTACT_COLUMNS[k] for k in changes)))
            return account_outcome if account_outcome in ("created", "updated") else "skipped"
        target.contact_changes[stored["id"]] = changes
        return "created" if account_outcome == "created" else "updated"


# --- writing a chunk -----------------------------------------------------------------------------------------

def _insert(session: Session, table: Any, rows: list[dict[str, Any]], ids: list[int] | None = None,
            same: dict[str, Any] | None = None, writer: Writer | None = None) -> None:
    """The rows in one bulk statement (see imports.bulk), with the `ids` taken for them (take_ids)."""
    insert_rows(session, table, rows, same=same, given_ids=ids, writer=writer)


def write_chunk(run: Run, chunk: Chunk, writer: Writer | None = None) -> None:
    """The chunk's new records and their history; with a `writer` (PostgreSQL), the new rows are sent to it, each
    table's as soon as they are made, and the database takes them in while this goes on (see imports.bulk.Writer)."""
    session, counts = run.session, run.report.counts
    targets = chunk.written
    new = [t for t in targets if t.values is not None]
    unnumbered = [t for t in new if not t.values["number"]]
    if unnumbered:
        numbers = accounts.next_account_numbers(session, run.storefront.account_number_prefix, len(unnumbered),
                                                reserve=not run.options.dry_run)
        for target, number in zip(unnumbered, numbers, strict=True):
            target.values["number"] = number
    addresses = [(t, a) for t in targets for a in t.new_addresses]
    people = [(t, c) for t in targets for c in t.new_contacts]
    # every id first, and anything the ORM holds written: the writer then has the connection to itself
    session.flush()
    account_ids = take_ids(session, Account.__table__, len(new))
    address_ids = take_ids(session, Address.__table__, len(addresses))
    contact_ids = take_ids(session, Contact.__table__, len(people))
    now = utcnow()
    history: list[dict[str, Any]] = []
    account_rows = []
    for target, account_id in zip(new, account_ids, strict=True):
        target.id = account_id
        account_rows.append({**target.values, "search_text": _search_text(run, target)})
    created = {"created_at": now, "updated_at": now}
    _insert(session, Account.__table__, account_rows, account_ids, same=created, writer=writer)
    for target in new:
        history.append(run.history_of_new("account.created", "account", target.id, target.id,
                                          {k: v for k, v in target.values.items() if v not in (None, "")}))
    counts["accounts_created"] += len(new)

    address_rows = [{**a, "account_id": t.id} for t, a in addresses]
    _insert(session, Address.__table__, address_rows, address_ids, writer=writer)
    for (target, _), values, address_id in zip(addresses, address_rows, address_ids, strict=True):
        history.append(run.history_of_new("address.added", "address", address_id, target.id, values))
    counts["addresses_created"] += len(addresses)
    definitions = run.definitions
    _insert(session, CustomAttributeValue.__table__, [
        {"account_id": t.id, "definition_id": definitions[key].id, "value": value}
        for t in new for key, value in t.attributes.items()], writer=writer)

    _insert(session, Contact.__table__, [{**c, "account_id": t.id} for t, c in people], contact_ids, same={
        "storefront_id": run.storefront.id, "status": ContactStatus.invited, "password_hash": None, **created},
        writer=writer)
    for (target, values), contact_id in zip(people, contact_ids, strict=True):
        history.append(run.history_of_new("contact.created", "contact", contact_id, target.id,
                                          {**values, "status": ContactStatus.invited}))
    counts["contacts_created"] += len(contact_ids)
    _insert(session, AuditEvent.__table__, history, same=run.history_same(now), writer=writer)
    if writer is not None and (any(t.stored is not None for t in targets) or run.options.send_welcome):
        writer.wait()  # what follows goes through the session
    _change_stored(run, chunk)
    if run.options.send_welcome and contact_ids:
        _welcome(run, contact_ids)


def _search_text(run: Run, target: Target) -> str:
    """What the account search will look in. A dry run leaves it empty: nothing reads it before the rollback, and
    taking it into the search's two trigram indexes (PostgreSQL) is about half of what the database does for an import's
    rows. The rows, their constraints and every other index are written as for real."""
    if run.options.dry_run:
        return ""
    v = target.values
    assert v is not None
    return accounts.search_text_for(v["name"], v["number"], v["email"], v["phone"], v["erp_code"],
                                    [a["city"] for a in target.new_addresses],
                                    [c["email"] for c in target.new_contacts])


def _change_stored(run: Run, chunk: Chunk) -> None:
    """Stored accounts and contacts that rows change, or that got new contacts or addresses: through the services
    (history, search text), a handful of them in a usual import."""
    session, counts = run.session, run.report.counts
    touched = {t.id: t for t in chunk.written if t.stored is not None
               and (t.changes or t.address_changes or t.attributes or t.new_contacts or t.new_addresses
                    or t.contact_changes)}
    if not touched:
        return
    loaded = session.scalars(select(Account).where(Account.id.in_(touched))
                             .options(selectinload(Account.addresses))).all()
    for account in loaded:
        target = touched[account.id]
        data: dict[str, Any] = dict(target.changes)
        if target.attributes:
            data["attributes"] = target.attributes
        if data and accounts.update_account(session, run.actor, account, data):
            counts["accounts_updated"] += 1
        for address_id, values in target.address_changes.items():
            accounts.update_address(session, run.actor, account, address_id, values)
            counts["addresses_updated"] += 1
        if target.contact_changes:
            for contact in session.scalars(select(Contact).where(Contact.id.in_(target.contact_changes))):
                contacts.update_contact(session, run.actor, contact, target.contact_changes[contact.id])
                counts["contacts_updated"] += 1
        accounts.reindex(session, account)


def _welcome(run: Run, contact_ids: list[int]) -> None:
    """The welcome e-mail with its activation link for each new contact, spaced out (a few per minute, see
    import_welcome_per_minute) so that neither the outbox nor the SMTP server is flooded; each link lives from its
    e-mail's turn on."""
    for contact in run.session.scalars(select(Contact).where(Contact.id.in_(contact_ids)).order_by(Contact.id)):
        contacts.send_activation(run.session, run.actor, contact, run.settings, not_before=run.welcome_at)
        run.welcome_at += run.welcome_step
        run.report.counts["welcome_emails"] += 1


# --- a whole file --------------------------------------------------------------------------------------------

def _raw_key(cells: dict[str, str]) -> tuple[str, str, str] | None:
    key = (cells.get("account_number", ""), cells.get("erp_code", "").upper(), cells.get("account_email", "").lower())
    return key if any(key) else None


def _raw_chunks(rows: Iterable[tuple[int, dict[str, str]]], size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    """Rows in chunks of about `size`; the rows of one account are never split between two chunks."""
    chunk: list[tuple[int, dict[str, str]]] = []
    last: tuple[str, str, str] | None = None
    for line, cells in rows:
        key = _raw_key(cells)
        if len(chunk) >= size and (key is None or key != last):
            yield chunk
            chunk = []
        chunk.append((line, cells))
        last = key
    if chunk:
        yield chunk


def plain_definitions(definitions: Iterable[CustomAttributeDefinition]) -> dict[str, SimpleNamespace]:
    """What checking a value needs of each custom attribute, free of the database session (for worker processes)."""
    return {d.key: SimpleNamespace(id=d.id, key=d.key, label=d.label, type=d.type, choices=list(d.choices or []),
                                   required=d.required) for d in definitions}


def check_rows(rows: list[tuple[int, dict[str, str]]], definitions: dict[str, Any]) -> list[Row]:
    return [check_row(line, cells, definitions) for line, cells in rows]


def _check_elsewhere(rows: list[tuple[int, dict[str, str]]], definitions: dict[str, Any]) -> list[Row]:
    """check_rows in a worker process: the rows come back without their cells, which this process still holds
    (they would be half of what travels back)."""
    checked = check_rows(rows, definitions)
    for row in checked:
        row.cells = {}
    return checked


def _checked(rows: list[tuple[int, dict[str, str]]], parts: list[Future[list[Row]]],
             definitions: dict[str, Any]) -> list[Row]:
    """A chunk's rows checked: the parts no worker has begun are checked here, from the last one back (this process
    would only wait for them), the others come from the workers with their cells put back."""
    checked: list[list[Row] | None] = [None] * len(parts)
    for n in reversed(range(len(parts))):
        if not parts[n].cancel():
            break
        checked[n] = check_rows(rows[n * PART:(n + 1) * PART], definitions)
    done: list[Row] = []
    for n, part in enumerate(parts):
        if (mine := checked[n]) is None:
            mine = part.result()
            for row, (_, cells) in zip(mine, rows[n * PART:(n + 1) * PART], strict=True):
                row.cells = cells
        done += mine
    return done


def checked_chunks(rows: Iterable[tuple[int, dict[str, str]]], definitions: dict[str, Any], size: int = CHUNK,
                   workers: int | None = None) -> Iterator[list[Row]]:
    """The file's rows checked, a chunk at a time. Checking needs no database, so beyond two chunks it runs in
    `workers` other processes (None: one per CPU but the one this process keeps; 0: none, all is checked here) while
    this one matches and writes, and checks what no worker has begun when it would otherwise wait (see _checked); at
    most a few chunks are in flight, so memory stays flat."""
    raw = _raw_chunks(rows, size)
    first = list(itertools.islice(raw, 2))
    if workers is None:
        workers = len(os.sched_getaffinity(0)) - 1
    if len(first) < 2 or workers < 1:
        for chunk in itertools.chain(first, raw):
            yield check_rows(chunk, definitions)
        return
    # the first part is checked here before the workers start as copies of this process: what checking loads on
    # first use (countries' rules, phone metadata, translations) is then loaded once for all of them
    head: Future[list[Row]] = Future()
    head.set_result(check_rows(first[0][:PART], definitions))
    context = multiprocessing.get_context(_start_method())
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_collect_less) as pool:
        pending: deque[tuple[list[tuple[int, dict[str, str]]], list[Future[list[Row]]]]] = deque()
        for chunk in itertools.chain(first, raw):
            parts = [head if start == 0 and chunk is first[0] else
                     pool.submit(_check_elsewhere, chunk[start:start + PART], definitions)
                     for start in range(0, len(chunk), PART)]
            pending.append((chunk, parts))
            if len(pending) > workers + 1:  # one chunk waiting beyond those being checked: no worker idles
                yield _checked(*pending.popleft(), definitions)
        while pending:
            yield _checked(*pending.popleft(), definitions)


def _start_method() -> str:
    """How checking processes start: as copies of this one (no start-up cost: the modules are loaded, about a CPU-
    second each), unless other threads run here (a web server's), whose locks a copy could inherit held; then as
    fresh interpreters. A copy inherits the database connections too, but only ever checks rows and ends without
    closing anything (multiprocessing ends it with os._exit)."""
    return "fork" if threading.active_count() == 1 else "spawn"


class _Collections:
    """How many imports of this process are under way, and the collector's thresholds from before the first."""

    lock = threading.Lock()
    under_way = 0
    before = gc.get_threshold()


def _collect_less() -> None:
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], COLLECT_AFTER), *before[1:])


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cycle collector less often while an import is under way (after COLLECT_AFTER new containers): it
    still runs, so memory stays flat, but no longer hundreds of times a chunk. The thresholds are the process's: the
    first of the imports under way at once raises them, the last puts them back."""
    with _Collections.lock:
        if not _Collections.under_way:
            _Collections.before = gc.get_threshold()
            _collect_less()
        _Collections.under_way += 1
    try:
        yield
    finally:
        with _Collections.lock:
            _Collections.under_way -= 1
            if not _Collections.under_way:
                gc.set_threshold(*_Collections.before)


def _record(run: Run, decided: list[tuple[Row, Target | None, str]]) -> None:
    for row, target, outcome in decided:
        messages = [*row.problems, *row.notes]
        label = target.label if target is not None else row.cells.get("account_number") or row.cells.get(
            "account_name", "")
        run.report.add(row, outcome, label, messages)


def import_rows(run: Run, path: Path, progress: Callable[[int], None] | None = None) -> None:
    """Check, match and write every row of the file in the run's transaction (the caller commits or not)."""
    header, rows = read_rows(path, file_format(path.name))
    run.report.problems = header_problems(header, run.definitions)
    if run.report.problems:
        return
    # PostgreSQL: a chunk's COPYs go from a thread of their own (imports.bulk.Writer) while this one reports the
    # chunk's rows and reads and checks the next chunk; they are waited for before its look-ups
    writer = Writer() if run.session.get_bind().dialect.name == "postgresql" else None
    with fewer_collections(), writer or nullcontext():
        for rows_of_chunk in checked_chunks(rows, plain_definitions(run.definitions.values()), CHUNK):
            if writer is not None:
                writer.wait()
            chunk = Chunk(run, rows_of_chunk)
            decided = chunk.decide()
            write_chunk(run, chunk, writer)
            _record(run, decided)
            if progress:
                progress(len(rows_of_chunk))


def welcome_start(session: Session, now: datetime) -> datetime:
    """When this import's first welcome e-mail may go: after those earlier imports still have waiting."""
    latest = session.scalar(select(func.max(Import.welcome_until)))
    return max(now, latest) if latest else now


def storefront_by_slug(session: Session, slug: str | None) -> Storefront:
    """The storefront named, or the only one there is."""
    if slug:
        found = session.scalar(select(Storefront).where(Storefront.slug == slug))
        if found is None:
            raise NotFound(_l("No storefront is called %(slug)s.", slug=slug), code="storefront_not_found")
        return found
    only = session.scalars(select(Storefront).limit(2)).all()
    if len(only) != 1:
        raise ValidationFailed("Name the storefront the customers sign in to (--storefront SLUG).",
                               code="storefront_required")
    return only[0]


def begin(db: Database, *, storefront_id: int, actor: Actor, file_name: str, options: Options,
          staff_user_id: int | None = None, stored_name: str = "") -> Import:
    """The record of an import, written before the rows are (so that their history can name it). A file kept for
    the console's preview (`stored_name`) waits for its confirmation."""
    with db.transaction() as session:
        record = Import(storefront_id=storefront_id, staff_user_id=staff_user_id, actor_label=actor.label,
                        file_name=file_name[:255], stored_name=stored_name, options=options.as_dict(),
                        status=ImportStatus.uploaded if stored_name or not options.dry_run else ImportStatus.dry_run,
                        dry_run=options.dry_run, counts={})
        session.add(record)
        session.flush()
        return record


def run_file(db: Database, settings: Settings, record: Import, path: Path, options: Options, actor: Actor,
             progress: Callable[[int], None] | None = None) -> Report:
    """Import (or dry-run) the file of `record` in one transaction; record what happened on `record`."""
    report = Report()
    label = f"{actor.label} · import {record.id}"
    with db.sessionmaker() as session:
        # SQLite: the write transaction begins now, so the driver-level writes (imports.bulk) are in it and a dry run
        # rolls them back (a transaction there otherwise begins at its first write through SQLAlchemy)
        serialise(session)
        _plan_by_index(session)
        storefront = session.get(Storefront, record.storefront_id)
        step = timedelta(minutes=1) / settings.import_welcome_per_minute
        run = Run(session, settings, storefront, options, Actor(actor.type, actor.id, label),
                  f"import {record.id} ({record.file_name})",
                  {d.key: d for d in accounts.definitions(session)}, report,
                  welcome_start(session, utcnow()), step)
        try:
            import_rows(run, path, progress)
            report.imported = not (options.dry_run or report.problems
                                   or (report.counts["failed"] and not options.good_rows_only))
            if report.imported:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        welcome_until = run.welcome_at if report.imported and report.counts["welcome_emails"] else None
    _finish(db, record.id, report, options, welcome_until)
    return report


def _plan_by_index(session: Session) -> None:
    """PostgreSQL plans the import's look-ups (a chunk's keys, thousands at a time) from the statistics of before the
    import, which know the tables it fills as smaller or empty, and reads every account and contact so far for each
    chunk: a file's look-ups then cost as the square of its rows. In the import's transaction they use the indexes
    (everything it reads, it reads by key)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(select(func.set_config("enable_seqscan", "off", True)))


def _finish(db: Database, import_id: int, report: Report, options: Options, welcome_until: datetime | None) -> None:
    with db.transaction() as session:
        record = session.get(Import, import_id)
        record.counts = report.as_dict()
        record.options = options.as_dict()
        record.dry_run = options.dry_run
        record.welcome_until = welcome_until
        if options.dry_run:
            record.status = record.status if record.status == ImportStatus.uploaded else ImportStatus.dry_run
        else:
            record.status = ImportStatus.imported if report.imported else ImportStatus.refused
            record.finished_at = utcnow()
