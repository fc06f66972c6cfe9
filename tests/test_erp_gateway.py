"""The ERP gateway contract, run against both adapters: the CSV folder and SAP Business One over its loopback server.

Both adapters serve the same demo data set (accountdesk.erp.demo_data), so each answer is compared with what the
data set says. The SAP adapter asks for pages of 2 rows, so every collection read here follows odata.nextLink.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from accountdesk.core.settings import Settings
from accountdesk.erp.demo_data import CASH_ACCOUNT, SHARED_EMAIL, demo_dataset, write_demo_folder
from accountdesk.erp.deps import Erp
from accountdesk.erp.file_adapter import FileGateway
from accountdesk.erp.gateway import (
    CachedGateway,
    ErpGateway,
    ErpStatementLine,
    ErpUnavailable,
    NewContact,
    NewCustomer,
    gateway_from_settings,
    monthly_statements,
)
from accountdesk.erp.sap_adapter import SapGateway
from tests.fakes.sap_service_layer import SapLoopback

TODAY = date.today()
DATA = demo_dataset(TODAY)


@pytest.fixture
def sap() -> Iterator[SapLoopback]:
    with SapLoopback(demo_dataset(TODAY)) as server:
        yield server


@pytest.fixture(params=["file", "sap"])
def gateway(request: pytest.FixtureRequest, tmp_path) -> Iterator[ErpGateway]:
    if request.param == "file":
        write_demo_folder(tmp_path / "erp", TODAY)
        yield FileGateway(tmp_path / "erp", timeout=1.0)
        return
    server = request.getfixturevalue("sap")
    adapter = SapGateway(server.url, server.company_db, server.username, server.password, timeout=2.0, page_size=2)
    yield adapter
    adapter.close()


def _account(code: str):
    return next(a for a in DATA.accounts if a.code == code)


def test_finds_contacts_by_email_whatever_the_case(gateway):
    found = gateway.find_contacts_by_email("  MARIA.Lopez@HARBOURTOOLS.example ")

    assert [(c.account_code, c.first_name, c.email, c.active) for c in found] == [
        ("C20000", "Maria", SHARED_EMAIL, True), ("C20001", "Maria", SHARED_EMAIL, True)]
    groups = {gateway.get_account(c.account_code).group for c in found}
    assert groups == {"100"}  # one e-mail on two accounts of the same customer group
    assert gateway.find_contacts_by_email("nobody@harbourtools.example") == []


def test_inactive_contact_is_found_but_does_not_exist_for_sign_in(gateway):
    [lee] = gateway.find_contacts_by_email("Lee@Kestrel-Catering.example")

    assert (lee.account_code, lee.active) == ("C20002", False)
    assert gateway.contact_exists("C20002", "lee@kestrel-catering.example") is False
    assert gateway.contact_exists("C20002", "SAM@kestrel-catering.example") is True


def test_contact_exists_only_on_its_own_active_account(gateway):
    assert gateway.contact_exists("C20000", SHARED_EMAIL) is True
    assert gateway.contact_exists("C20000", "sam@kestrel-catering.example") is False
    assert gateway.contact_exists("C20003", "ada@orchid-interiors.example") is False  # the account is frozen
    assert gateway.contact_exists("C99999", SHARED_EMAIL) is False


def test_reads_an_account_with_credit_limit_and_balance(gateway):
    account = gateway.get_account("C20000")

    assert account == _account("C20000")
    assert (account.name, account.group, account.billing_postcode, account.payment_terms, account.price_list,
            account.currency) == ("Harbour Tools Ltd", "100", "E16 1AA", "1", "1", "GBP")
    assert account.credit_limit == Decimal("5000") and isinstance(account.credit_limit, Decimal)
    assert account.balance == Decimal("400.39") and isinstance(account.balance, Decimal)
    assert gateway.get_account("C20003").active is False
    assert gateway.get_account(CASH_ACCOUNT).name == "Cash Sales (web shop)"
    assert gateway.get_account("C99999") is None


def test_lists_invoices_since_a_date(gateway):
    every = gateway.list_invoices("C20000")
    recent = gateway.list_invoices("C20000", since=TODAY - timedelta(days=40))

    assert [(i.number, i.open, i.total) for i in every] == [
        ("1001", False, Decimal("1250.00")), ("1002", True, Decimal("310.40")), ("1003", True, Decimal("89.99"))]
    assert [i.number for i in recent] == ["1002", "1003"]
    assert recent[0].issued_on == TODAY - timedelta(days=40) and recent[0].currency == "GBP"
    assert gateway.list_invoices("C99999") == []


def test_lists_monthly_statements_closing_on_the_balance(gateway):
    statements = gateway.list_statements("C20000")

    assert statements == DATA.statements("C20000", TODAY)
    assert len(statements) >= 2
    for statement in statements:
        assert statement.closing_balance == statement.opening_balance + sum(line.amount for line in statement.lines)
    for earlier, later in zip(statements, statements[1:], strict=False):
        assert later.opening_balance == earlier.closing_balance
    assert statements[-1].closing_balance == Decimal("400.39")
    assert gateway.list_statements("C99999") == []


def test_create_customer_twice_with_one_key_makes_one_customer(gateway):
    customer = NewCustomer(name="Lantern Bakery", email="Orders@Lantern.example", phone="+44 20 7946 0999",
                           address_line1="2 Mill Lane", city="York", postcode="YO1 7HH", country="GB",
                           currency="GBP", group="110", payment_terms="2",
                           contacts=(NewContact("Nia", "Baker", "Nia@Lantern.example", "+44 7700 900099"),))

    first = gateway.create_customer(customer, "web-account-42")
    again = gateway.create_customer(customer, "web-account-42")
    other = gateway.create_customer(customer, "web-account-43")

    assert first == again and other != first
    account = gateway.get_account(first)
    assert (account.name, account.group, account.payment_terms, account.billing_postcode, account.email) == (
        "Lantern Bakery", "110", "2", "YO1 7HH", "orders@lantern.example")
    assert [c.account_code for c in gateway.find_contacts_by_email("nia@lantern.example")] == sorted([first, other])
    assert gateway.contact_exists(first, "NIA@lantern.example") is True


def test_health(gateway):
    assert gateway.health() is True


def test_monthly_statements_cover_the_last_twelve_months():
    today = date(2026, 5, 20)
    movements = [ErpStatementLine(date(2025, 4, 30), "old", "Invoice", Decimal("50")),
                 ErpStatementLine(date(2026, 3, 3), "I1", "Invoice", Decimal("30")),
                 ErpStatementLine(date(2026, 5, 2), "P1", "Payment", Decimal("-10"))]

    march, may = monthly_statements("C1", "EUR", Decimal("100"), movements, today)

    assert (march.period_start, march.period_end, march.opening_balance, march.closing_balance) == (
        date(2026, 3, 1), date(2026, 3, 31), Decimal("80"), Decimal("110"))
    assert (may.period_start, may.period_end, may.opening_balance, may.closing_balance) == (
        date(2026, 5, 1), date(2026, 5, 31), Decimal("110"), Decimal("100"))


# -- the cache ---------------------------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_hit_avoids_a_second_request_to_sap(sap):
    clock = Clock()
    cached = CachedGateway(SapGateway(sap.url, sap.company_db, sap.username, sap.password), 60, clock=clock)

    assert cached.get_account("C20000").name == "Harbour Tools Ltd"
    assert cached.contact_exists("C20000", SHARED_EMAIL)
    assert len(cached.find_contacts_by_email(SHARED_EMAIL)) == 2
    asked = sap.count("BusinessPartners")
    assert cached.get_account("C20000").name == "Harbour Tools Ltd"
    assert cached.contact_exists("C20000", SHARED_EMAIL.upper())
    assert len(cached.find_contacts_by_email(SHARED_EMAIL.upper())) == 2
    assert sap.count("BusinessPartners") == asked

    clock.now += 61
    cached.get_account("C20000")
    assert sap.count("BusinessPartners") == asked + 1
    cached.close()


def test_cache_keeps_no_failures_and_never_caches_create_or_health(sap):
    clock = Clock()
    cached = CachedGateway(SapGateway(sap.url, sap.company_db, sap.username, sap.password, timeout=1), 60,
                           clock=clock)
    sap.down = "503"
    with pytest.raises(ErpUnavailable):
        cached.get_account("C20000")
    assert cached.health() is False
    sap.down = None
    assert cached.health() is True
    assert cached.find_contacts_by_email("new@lantern.example") == []

    code = cached.create_customer(NewCustomer("Lantern", "new@lantern.example",
                                              contacts=(NewContact("N", "B", "new@lantern.example"),)), "k-1")

    assert [c.account_code for c in cached.find_contacts_by_email("new@lantern.example")] == [code]
    cached.close()


def test_cache_over_the_file_adapter_sees_a_change_after_it_expires(tmp_path):
    folder = tmp_path / "erp"
    write_demo_folder(folder, TODAY)
    clock = Clock()
    cached = CachedGateway(FileGateway(folder), 60, clock=clock)
    assert cached.contact_exists("C20000", "tom.reed@harbourtools.example")

    contacts = (folder / "contacts.csv").read_text().replace("tom.reed@harbourtools.example", "tom@elsewhere.example")
    (folder / "contacts.csv").write_text(contacts)

    assert cached.contact_exists("C20000", "tom.reed@harbourtools.example")  # still the cached answer
    clock.now += 61
    assert cached.contact_exists("C20000", "tom.reed@harbourtools.example") is False


# -- settings and the request dependency ---------------------------------------------------------------------------

def test_gateway_from_settings_builds_the_file_adapter_with_a_cache(tmp_path):
    write_demo_folder(tmp_path, TODAY)

    gateway = gateway_from_settings(Settings(erp_file_dir=tmp_path, erp_timeout_seconds=0.5))
    plain = gateway_from_settings(Settings(erp_file_dir=tmp_path, erp_cache_seconds=0))

    assert isinstance(gateway, CachedGateway) and isinstance(gateway.inner, FileGateway)
    assert gateway.inner.timeout == 0.5 and gateway.seconds == 60
    assert isinstance(plain, FileGateway)
    assert gateway.get_account("C20001").city == "Manchester"


def test_gateway_from_settings_builds_the_sap_adapter(sap):
    gateway = gateway_from_settings(Settings(**sap.settings_fields(), erp_sap_page_size=3, erp_timeout_seconds=1.5))

    assert isinstance(gateway.inner, SapGateway)
    assert gateway.inner.page_size == 3
    assert gateway.get_account("C20004").name == "Pine & Oak Joinery"
    gateway.close()
    with pytest.raises(ValueError, match="ERP_SAP_URL"):
        gateway_from_settings(Settings(erp_adapter="sap"))


def test_request_dependency_builds_one_gateway_per_app(tmp_path):
    write_demo_folder(tmp_path, TODAY)
    app = FastAPI()
    app.state.settings = Settings(erp_file_dir=tmp_path)

    @app.get("/name/{code}")
    def name(code: str, erp: Erp) -> dict:
        return {"name": erp.get_account(code).name, "gateway": id(erp)}

    with TestClient(app) as client:
        first, second = client.get("/name/C20000").json(), client.get("/name/C20001").json()

    assert (first["name"], second["name"]) == ("Harbour Tools Ltd", "Harbour Tools North")
    assert first["gateway"] == second["gateway"] == id(app.state.erp)
