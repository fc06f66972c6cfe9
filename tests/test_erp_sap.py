"""The SAP Business One adapter's protocol, against the loopback Service Layer over real HTTP(S).

Session expiry and re-login, paging through odata.nextLink, SAP error bodies, timeouts, a server that is down,
idempotent creation when an answer is lost, and TLS with a CA bundle.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from accountdesk.erp.demo_data import SHARED_EMAIL, demo_dataset
from accountdesk.erp.gateway import ErpError, ErpUnavailable, NewContact, NewCustomer
from accountdesk.erp.sap_adapter import SapGateway
from tests.fakes.sap_service_layer import SapLoopback

CUSTOMER = NewCustomer(name="Lantern Bakery", email="orders@lantern.example", city="York", postcode="YO1 7HH",
                       country="GB", region="GB-YOR", group="110",
                       contacts=(NewContact("Nia", "Baker", "nia@lantern.example"),))


@pytest.fixture
def sap() -> Iterator[SapLoopback]:
    with SapLoopback(demo_dataset()) as server:
        yield server


def _gateway(server: SapLoopback, **options) -> SapGateway:
    return SapGateway(server.url, server.company_db, server.username, server.password, **options)


@pytest.fixture
def gateway(sap) -> Iterator[SapGateway]:
    adapter = _gateway(sap, timeout=1.0)
    yield adapter
    adapter.close()


def _partner_requests(sap: SapLoopback) -> list[str]:
    return [path for method, path in sap.requests if path.startswith("BusinessPartners")]


def test_logs_in_once_and_sends_the_session_cookies(sap, gateway):
    gateway.get_account("C20000")
    gateway.get_account("C20001")

    assert sap.count("Login") == 1
    assert sap.count("BusinessPartners") == 2


def test_expired_session_logs_in_again_transparently(sap, gateway):
    assert gateway.get_account("C20000").name == "Harbour Tools Ltd"
    sap.expire_sessions()

    assert gateway.get_account("C20001").name == "Harbour Tools North"
    assert sap.count("Login") == 2
    assert [p.split("?")[0] for p in _partner_requests(sap)] == [
        "BusinessPartners('C20000')", "BusinessPartners('C20001')", "BusinessPartners('C20001')"]


def test_idle_session_times_out_and_is_renewed():
    with SapLoopback(demo_dataset(), session_timeout=0.3) as server:
        adapter = _gateway(server)
        assert adapter.contact_exists("C20000", SHARED_EMAIL)
        time.sleep(0.45)
        assert adapter.contact_exists("C20000", SHARED_EMAIL)
        assert server.count("Login") == 2
        adapter.close()


def test_refused_login_is_unavailable_with_saps_message(sap):
    adapter = SapGateway(sap.url, sap.company_db, sap.username, "wrong password", timeout=1.0)

    with pytest.raises(ErpUnavailable, match="Login failed"):
        adapter.get_account("C20000")
    assert adapter.health() is False
    assert sap.count("BusinessPartners") == 0


def test_pages_through_odata_next_link(sap):
    for n in range(5):
        sap.add_partner({"CardCode": f"C3000{n}", "CardName": f"Branch {n}", "ContactEmployees": [
            {"CardCode": f"C3000{n}", "InternalCode": 100 + n, "Name": "Maria", "E_Mail": SHARED_EMAIL.upper(),
             "Active": "tYES"}]})
    adapter = _gateway(sap, page_size=4)  # 11 partners: pages of 4, 4 and 3

    found = adapter.find_contacts_by_email(SHARED_EMAIL)

    assert [c.account_code for c in found] == ["C20000", "C20001", "C30000", "C30001", "C30002", "C30003", "C30004"]
    pages = _partner_requests(sap)
    assert len(pages) == 3 and "$skip=4" in pages[1] and "$skip=8" in pages[2]
    adapter.close()


def test_suppliers_are_not_customer_accounts(sap, gateway):
    sap.add_partner({"CardCode": "V10000", "CardName": "Steel Supplier", "CardType": "cSupplier",
                     "ContactEmployees": [{"InternalCode": 200, "Name": "M", "E_Mail": SHARED_EMAIL,
                                           "Active": "tYES"}]})

    assert [c.account_code for c in gateway.find_contacts_by_email(SHARED_EMAIL)] == ["C20000", "C20001"]
    assert gateway.get_account("V10000") is None
    assert gateway.contact_exists("V10000", SHARED_EMAIL) is False


def test_codes_with_quotes_and_spaces_are_escaped(sap, gateway):
    sap.add_partner({"CardCode": "O'NEIL & CO", "CardName": "O'Neil", "ContactEmployees": [
        {"InternalCode": 300, "Name": "Pat", "E_Mail": "pat@oneil.example", "Active": "tYES"}]})

    assert gateway.get_account("O'NEIL & CO").name == "O'Neil"
    assert gateway.contact_exists("O'NEIL & CO", "pat@oneil.example") is True
    assert gateway.list_invoices("O'NEIL & CO") == []


def test_contact_removed_in_the_erp_no_longer_exists(sap, gateway):
    assert gateway.contact_exists("C20001", SHARED_EMAIL) is True
    sap.partners["C20001"]["ContactEmployees"] = []

    assert gateway.contact_exists("C20001", SHARED_EMAIL) is False


def test_sap_error_body_becomes_an_erp_error_with_its_message(sap, gateway):
    sap.fail_next(400, -5002, "Enter a valid business partner group", resource="BusinessPartners")

    with pytest.raises(ErpError) as caught:
        gateway.find_contacts_by_email(SHARED_EMAIL)

    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400, -5002, "Enter a valid business partner group")


def test_create_without_the_key_field_in_sap_is_an_erp_error():
    with SapLoopback(demo_dataset(), user_fields=()) as server:
        adapter = _gateway(server)
        with pytest.raises(ErpError, match="Property 'U_WebKey' of 'BusinessPartner' is invalid"):
            adapter.create_customer(CUSTOMER, "web-1")
        assert "C20005" not in server.partners
        adapter.close()


def test_non_numeric_group_is_refused_before_anything_is_sent(sap, gateway):
    with pytest.raises(ErpError, match="GroupCode"):
        gateway.create_customer(NewCustomer("X", "x@x.example", group="trade"), "web-2")
    assert sap.count("BusinessPartners", method="POST") == 0


def test_server_error_is_unavailable(sap, gateway):
    sap.fail_next(500, -1, "Internal error", resource="Invoices")

    with pytest.raises(ErpUnavailable, match="Internal error"):
        gateway.list_invoices("C20000")
    assert len(gateway.list_invoices("C20000")) == 3


def test_created_partner_has_saps_shape(sap, gateway):
    code = gateway.create_customer(CUSTOMER, "web-7")

    partner = sap.partners[code]
    assert (partner["CardName"], partner["CardType"], partner["GroupCode"], partner["U_WebKey"]) == (
        "Lantern Bakery", "cCustomer", 110, "web-7")
    assert partner["BPAddresses"][0]["AddressType"] == "bo_BillTo" and partner["BPAddresses"][0]["State"] == "YOR"
    assert [(c["FirstName"], c["E_Mail"], c["Active"]) for c in partner["ContactEmployees"]] == [
        ("Nia", "nia@lantern.example", "tYES")]


def test_timeout_is_unavailable(sap):
    adapter = _gateway(sap, timeout=0.2)
    answer = sap.hold("GET", "BusinessPartners('C20000')")

    try:  # without the time limit the call would wait for the held answer and return the partner
        with pytest.raises(ErpUnavailable, match="did not answer in time"):
            adapter.get_account("C20000")
    finally:
        answer.set()
    adapter.close()


def test_lost_answer_to_a_create_then_a_retry_makes_one_customer(sap):
    sap.slow[("POST", "BusinessPartners")] = 0.6
    adapter = _gateway(sap, timeout=0.3)

    with pytest.raises(ErpUnavailable):
        adapter.create_customer(CUSTOMER, "web-9")  # SAP creates the partner, the answer comes too late
    deadline = time.monotonic() + 2
    while not any(p.get("U_WebKey") == "web-9" for p in sap.partners.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    sap.slow.clear()
    code = adapter.create_customer(CUSTOMER, "web-9")

    assert [c for c, p in sap.partners.items() if p.get("U_WebKey") == "web-9"] == [code]
    assert sap.count("BusinessPartners", method="POST") == 1
    adapter.close()


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_server_down_is_unavailable_and_recovers(sap, gateway, mode):
    assert gateway.health() is True
    sap.down = mode

    with pytest.raises(ErpUnavailable):
        gateway.find_contacts_by_email(SHARED_EMAIL)
    assert gateway.health() is False

    sap.down = None
    assert len(gateway.find_contacts_by_email(SHARED_EMAIL)) == 2


def test_stopped_server_is_unavailable(gateway, sap):
    gateway.get_account("C20000")
    sap.stop()

    with pytest.raises(ErpUnavailable, match="cannot be reached"):
        gateway.get_account("C20000")
    assert gateway.health() is False


def test_nothing_listening_is_unavailable():
    adapter = SapGateway("http://127.0.0.1:9", "DB", "user", "pw", timeout=0.5)

    with pytest.raises(ErpUnavailable):
        adapter.get_account("C20000")
    adapter.close()


def test_logout_on_close_ends_the_session(sap):
    adapter = _gateway(sap)
    adapter.get_account("C20000")
    adapter.close()

    assert sap.count("Logout") == 1
    response = httpx.get(f"{sap.url}/b1s/v1/BusinessPartners", headers={"Cookie": "B1SESSION=unknown"})
    assert response.status_code == 401
    assert response.json()["error"]["message"]["value"].startswith("Invalid session")


def test_statements_read_invoices_and_payments(sap, gateway):
    statements = gateway.list_statements("C20000", today=date.today())

    references = [line.reference for s in statements for line in s.lines]
    assert "5001" in references and "1001" in references
    assert sap.count("IncomingPayments") == 1


# -- TLS ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[SapLoopback, str]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    with SapLoopback(demo_dataset(), ssl_context=context) as server:
        yield server, str(cert)


def test_https_with_a_ca_bundle(tls_server):
    server, cert = tls_server
    assert server.url.startswith("https://")

    trusted = _gateway(server, ca_bundle=cert)
    untrusted = _gateway(server, timeout=1.0)
    unchecked = _gateway(server, verify=False)

    assert trusted.get_account("C20000").name == "Harbour Tools Ltd"
    with pytest.raises(ErpUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        untrusted.get_account("C20000")
    assert unchecked.get_account("C20001").name == "Harbour Tools North"
    for adapter in (trusted, untrusted, unchecked):
        adapter.close()
