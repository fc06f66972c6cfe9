"""The demo ERP behind either adapter (a CSV folder, or SAP Business One over its loopback server) with knobs to
remove a contact, take the ERP down and count customer creations, and ERP-linked logins built through the real
services (registration.erp.account_from_erp). Import the fixtures into a test module to use them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from accountdesk.accounts.models import Account
from accountdesk.contacts.models import Contact
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database
from accountdesk.erp.demo_data import demo_dataset, write_demo_folder
from accountdesk.erp.file_adapter import FILES, FileGateway, read_rows, write_rows
from accountdesk.erp.gateway import ErpGateway
from accountdesk.erp.sap_adapter import SapGateway
from accountdesk.registration import erp as erp_service
from accountdesk.storefronts.models import Storefront
from tests import factories as f
from tests.fakes.sap_service_layer import SapLoopback

TODAY = date.today()
DATA = demo_dataset(TODAY)


@dataclass
class ErpWorld:
    adapter: str
    gateway: ErpGateway
    folder: Path | None = None
    sap: SapLoopback | None = None
    _moved: list[Path] = field(default_factory=list)

    def remove_contact(self, account_code: str, email: str) -> None:
        """The ERP no longer has this contact on this account."""
        if self.sap is not None:
            with self.sap.lock:
                people = self.sap.partners[account_code]["ContactEmployees"]
                people[:] = [c for c in people if c["E_Mail"].lower() != email.lower()]
            return
        path = self.folder / FILES["contacts"]
        header, rows = read_rows(path)
        write_rows(path, header, [r for r in rows if not (r["account_code"] == account_code
                                                          and r["email"].lower() == email.lower())])

    def change_contact(self, account_code: str, email: str, *, phone: str | None = None,
                       active: bool | None = None) -> None:
        """The ERP now gives this contact another phone, or marks it active or inactive."""
        if self.sap is not None:
            with self.sap.lock:
                for person in self.sap.partners[account_code]["ContactEmployees"]:
                    if person["E_Mail"].lower() == email.lower():
                        person.update({k: v for k, v in (("Phone1", phone), ("Active", None if active is None else
                                                                               "tYES" if active else "tNO"))
                                       if v is not None})
            return
        path = self.folder / FILES["contacts"]
        header, rows = read_rows(path)
        for row in rows:
            if row["account_code"] == account_code and row["email"].lower() == email.lower():
                row.update({k: v for k, v in (("phone", phone), ("active", None if active is None else
                                                                 "yes" if active else "no")) if v is not None})
        write_rows(path, header, rows)

    def change_account(self, code: str, *, phone: str) -> None:
        """The ERP now gives this customer another phone."""
        if self.sap is not None:
            with self.sap.lock:
                self.sap.partners[code]["Phone1"] = phone
            return
        path = self.folder / FILES["customers"]
        header, rows = read_rows(path)
        for row in rows:
            if row["code"] == code:
                row["phone"] = phone
        write_rows(path, header, rows)

    def down(self) -> None:
        if self.sap is not None:
            self.sap.down = "503"
        else:
            self.folder.rename(self.folder.with_name("erp-off"))

    def up(self) -> None:
        if self.sap is not None:
            self.sap.down = None
        elif not self.folder.exists():
            self.folder.with_name("erp-off").rename(self.folder)

    def creates(self) -> int:
        """How many customers the ERP was asked to create (SAP: POST BusinessPartners; file: rows made by a push)."""
        if self.sap is not None:
            return self.sap.count("BusinessPartners", "POST")
        _, rows = read_rows(self.folder / FILES["customers"])
        return sum(1 for r in rows if r.get("idempotency_key"))


def file_world(tmp_path: Path) -> ErpWorld:
    folder = tmp_path / "erp"
    write_demo_folder(folder, TODAY)
    return ErpWorld("file", FileGateway(folder, timeout=1.0), folder=folder)


@pytest.fixture
def sap_world() -> Iterator[ErpWorld]:
    with SapLoopback(demo_dataset(TODAY)) as server:
        gateway = SapGateway(server.url, server.company_db, server.username, server.password, timeout=1.0,
                             page_size=3)
        yield ErpWorld("sap", gateway, sap=server)
        gateway.close()


@pytest.fixture(params=["file", "sap"])
def erp_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ErpWorld]:
    """The demo ERP behind each adapter in turn."""
    if request.param == "file":
        yield file_world(tmp_path)
    else:
        yield request.getfixturevalue("sap_world")


@pytest.fixture
def file_erp(tmp_path: Path) -> ErpWorld:
    """The demo ERP as a CSV folder only (for tests where the adapter does not matter)."""
    return file_world(tmp_path)


def erp_store(db: Database, **fields) -> Storefront:
    return f.storefront(db, **{"name": "Trade Counter", "registration_mode": "erp_verified",
                               "erp_cash_account_code": "CASH", "default_currency": "GBP", **fields})


def erp_account(db: Database, store: Storefront, code: str) -> Account:
    """The local account of a demo ERP customer, made by the rule instant accounts use."""
    erp = next(a for a in DATA.accounts if a.code == code)
    with db.transaction() as session:
        return erp_service.account_from_erp(session, Actor.system(), erp, session.get(Storefront, store.id))


def erp_login(db: Database, store: Storefront, code: str, email: str, **fields) -> Contact:
    """An active login with the factories' password for the ERP contact with this e-mail on account `code`."""
    erp_contact = next(c for c in DATA.contacts if c.account_code == code and c.email == email.lower())
    account = erp_account(db, store, code)
    return f.contact(db, account, store, **{"email": erp_contact.email, "first_name": erp_contact.first_name,
                                            "last_name": erp_contact.last_name, "erp_contact_code": erp_contact.code,
                                            **fields})
