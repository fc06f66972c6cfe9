"""The customers of a storefront written in the import's own column set: importing the file again changes nothing.
Accounts are read in batches by id, with their addresses, attribute values and contacts in one look-up each, so the
memory used does not grow with the number of customers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, Address, CustomAttributeValue
from accountdesk.contacts.models import Contact
from accountdesk.imports import columns
from accountdesk.imports.checks import ADDRESS_FIELDS
from accountdesk.imports.service import ACCOUNT_COLUMNS, CONTACT_COLUMNS, STORED_ACCOUNT, STORED_ADDRESS
from accountdesk.storefronts.models import Storefront

BATCH = 1000
ACCOUNT_ORDER = ("number", *ACCOUNT_COLUMNS)  # the order of the file's account columns
CONTACT_ORDER = ("email", *CONTACT_COLUMNS)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def rows(session: Session, storefront: Storefront, attribute_ids: list[int]) -> Iterator[list[str]]:
    """One row per contact on the storefront, with its account's columns; an account without one gets one row."""
    last_id = 0
    while True:
        batch = session.execute(select(*STORED_ACCOUNT).where(Account.storefront_id == storefront.id,
                                                              Account.id > last_id)
                                .order_by(Account.id).limit(BATCH)).mappings().all()
        if not batch:
            return
        ids = [a["id"] for a in batch]
        last_id = ids[-1]
        addresses: dict[int, dict[str, dict]] = {}
        for a in session.execute(select(*STORED_ADDRESS).where(Address.account_id.in_(ids)).order_by(Address.id)
                                 ).mappings():
            kind = "billing" if a["is_billing"] else "shipping" if a["is_shipping"] else None
            if kind:
                addresses.setdefault(a["account_id"], {}).setdefault(kind, a)
        attributes: dict[int, dict[int, str]] = {}
        for account_id, definition_id, value in session.execute(
                select(CustomAttributeValue.account_id, CustomAttributeValue.definition_id, CustomAttributeValue.value)
                .where(CustomAttributeValue.account_id.in_(ids))):
            attributes.setdefault(account_id, {})[definition_id] = value
        people: dict[int, list] = {}
        for c in session.execute(select(Contact.account_id, *(getattr(Contact, k) for k in CONTACT_ORDER))
                                 .where(Contact.account_id.in_(ids), Contact.storefront_id == storefront.id)
                                 .order_by(Contact.account_id, Contact.id)):
            people.setdefault(c[0], []).append([_text(v) for v in c[1:]])
        for a in batch:
            cells = [_text(a[k]) for k in ACCOUNT_ORDER]
            for kind in columns.ADDRESS_KINDS:
                address = addresses.get(a["id"], {}).get(kind)
                cells += [_text(address[k]) if address else "" for k in ADDRESS_FIELDS]
            values = attributes.get(a["id"], {})
            extra = [values.get(i, "") for i in attribute_ids]
            for person in people.get(a["id"]) or [[""] * len(CONTACT_ORDER)]:
                yield cells + person + extra


def export_file(session: Session, storefront: Storefront, path: Path) -> int:
    """Write the storefront's customers to `path` (.csv or .xlsx); returns the number of rows."""
    definitions = accounts.definitions(session)
    names = columns.column_names([d.key for d in definitions])
    return columns.write(path, names, rows(session, storefront, [d.id for d in definitions]))
