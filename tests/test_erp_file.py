"""The file ERP: CSV folder re-read on change, atomic locked appends, clear errors for broken files."""

from __future__ import annotations

import fcntl
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from accountdesk.erp.demo_data import SHARED_EMAIL, write_demo_folder
from accountdesk.erp.file_adapter import FileGateway, read_rows
from accountdesk.erp.gateway import ErpUnavailable, NewContact, NewCustomer

CUSTOMER = NewCustomer("Lantern Bakery", "orders@lantern.example", contacts=(
    NewContact("Nia", "Baker", "nia@lantern.example"),))


@pytest.fixture
def folder(tmp_path):
    write_demo_folder(tmp_path / "erp")
    return tmp_path / "erp"


def test_a_changed_file_is_read_again(folder):
    gateway = FileGateway(folder)
    assert gateway.find_contacts_by_email("new.buyer@harbourtools.example") == []

    with (folder / "contacts.csv").open("a") as handle:
        handle.write("99,C20000,New,Buyer,New.Buyer@HarbourTools.example,,yes\n")

    [contact] = gateway.find_contacts_by_email("new.buyer@harbourtools.example")
    assert (contact.code, contact.account_code, contact.email) == ("99", "C20000", "new.buyer@harbourtools.example")

    text = (folder / "contacts.csv").read_text().replace("New.Buyer@HarbourTools.example,,yes", "x@y.example,,no")
    (folder / "contacts.csv").write_text(text)
    assert gateway.find_contacts_by_email("new.buyer@harbourtools.example") == []


def test_hand_made_files_with_a_bom_and_few_columns_are_read(tmp_path):
    (tmp_path / "customers.csv").write_text("\ufeffcode,name,credit_limit\nK1,Kite Ltd,250.5\n", encoding="utf-8")
    (tmp_path / "contacts.csv").write_text("code,account_code,email\n1,K1,Kim@Kite.example\n")
    gateway = FileGateway(tmp_path)

    account = gateway.get_account("K1")
    assert (account.name, str(account.credit_limit), account.active, account.currency) == ("Kite Ltd", "250.5",
                                                                                           True, "")
    assert gateway.contact_exists("K1", "kim@kite.example") is True
    assert gateway.list_invoices("K1") == [] and gateway.list_statements("K1") == []


def test_a_broken_row_names_the_file_and_line(folder):
    with (folder / "invoices.csv").open("a") as handle:
        handle.write("2001,C20000,yesterday,10.00,GBP,yes\n")
    gateway = FileGateway(folder)

    with pytest.raises(ErpUnavailable, match=r"invoices.csv line 9: issued_on is not a YYYY-MM-DD date"):
        gateway.get_account("C20000")
    assert gateway.health() is False


def test_missing_folder_is_unavailable(tmp_path):
    gateway = FileGateway(tmp_path / "nowhere")

    with pytest.raises(ErpUnavailable, match="does not exist"):
        gateway.find_contacts_by_email(SHARED_EMAIL)
    with pytest.raises(ErpUnavailable):
        gateway.create_customer(CUSTOMER, "k")
    assert gateway.health() is False


def test_create_appends_the_next_code_and_keeps_the_key(folder):
    code = FileGateway(folder).create_customer(CUSTOMER, "web-account-1")

    header, rows = read_rows(folder / "customers.csv")
    assert code == "C20005" and rows[-1]["code"] == "C20005"
    assert rows[-1]["idempotency_key"] == "web-account-1" and "idempotency_key" in header
    assert not list(folder.glob(".*.tmp"))  # the temporary file was renamed into place


def test_parallel_creates_with_one_key_make_one_customer(folder):
    gateways = [FileGateway(folder) for _ in range(4)]  # as if from four processes: separate lock handles
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda n: gateways[n % 4].create_customer(CUSTOMER, "same-key"), range(16)))
        others = list(pool.map(lambda n: gateways[n % 4].create_customer(CUSTOMER, f"key-{n}"), range(8)))

    assert set(codes) == {"C20005"}
    assert len(set(others)) == 8
    _, rows = read_rows(folder / "customers.csv")
    assert len(rows) == 6 + 1 + 8
    assert len(FileGateway(folder).find_contacts_by_email("nia@lantern.example")) == 9


def test_a_repeat_completes_contacts_a_crash_left_out(folder):
    with (folder / "customers.csv").open("a") as handle:
        handle.write("C20005,Lantern Bakery,,,,,,orders@lantern.example,,,,0,0,yes,,,,web-account-1\n")

    code = FileGateway(folder).create_customer(CUSTOMER, "web-account-1")

    assert code == "C20005"
    assert [c.account_code for c in FileGateway(folder).find_contacts_by_email("nia@lantern.example")] == ["C20005"]


def test_create_gives_up_when_another_writer_holds_the_lock(folder):
    gateway = FileGateway(folder, timeout=0.2)
    with (folder / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ErpUnavailable, match="locked"):
            gateway.create_customer(CUSTOMER, "k")
    assert gateway.create_customer(CUSTOMER, "k") == "C20005"


def test_a_customers_file_without_the_key_column_gets_one(tmp_path):
    (tmp_path / "customers.csv").write_text("code,name\nC00007,Old Ltd\n")

    code = FileGateway(tmp_path).create_customer(CUSTOMER, "web-1")

    header, rows = read_rows(tmp_path / "customers.csv")
    assert code == "C00008"
    assert header[:2] == ["code", "name"] and "idempotency_key" in header
    assert [r["name"] for r in rows] == ["Old Ltd", "Lantern Bakery"]


def test_readers_never_see_a_half_written_file(folder):
    gateway = FileGateway(folder)
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                assert gateway.get_account("C20000") is not None
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(10):
        FileGateway(folder).create_customer(CUSTOMER, f"k-{n}")
    stop.set()
    reader.join()
    assert errors == []
    assert FileGateway(folder).get_account("C20014").name == "Lantern Bakery"
