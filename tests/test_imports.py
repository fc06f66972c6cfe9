"""Customer files: import with a dry run, all or nothing or good rows only, idempotent re-runs, updates, welcome
e-mails spaced out, export → import round trips (CSV and XLSX), the command line and the console's preview."""

from __future__ import annotations

import csv
import gc
import json
import random
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from accountdesk.accounts import service as accounts
from accountdesk.accounts.models import Account, AccountKind, Address, CustomAttributeDefinition, CustomAttributeValue
from accountdesk.contacts.models import Contact
from accountdesk.core import audit, i18n
from accountdesk.core.audit import Actor
from accountdesk.core.models import AuditEvent, OutboxMessage, SingleUseToken
from accountdesk.imports import service as imports
from accountdesk.imports.bulk import JsonText, Writer, insert_rows, take_ids
from accountdesk.imports.columns import column_names, read_rows
from accountdesk.imports.export import export_file
from accountdesk.imports.models import Import
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.conftest import clean_environment
from tests.reseller_world import console_sign_in, csrf_of

ACTOR = Actor("staff", None, "importer@staff.example")


def company(number: str, name: str, email: str, first: str, **extra: str) -> dict[str, str]:
    """A row of a German company and one contact."""
    return {"account_number": number, "account_name": name, "account_email": f"office@{number.lower()}.example",
            "billing_line1": "Hafenstraße 1", "billing_city": "Hamburg", "billing_postcode": "20457",
            "billing_country": "DE", "contact_email": email, "contact_first_name": first,
            "contact_last_name": "Meyer", "contact_phone": "040 1234567", **extra}


GOOD = [
    company("C100", "Hafen GmbH", "anna@hafen.example", "Anna"),
    company("C100", "Hafen GmbH", "ben@hafen.example", "Ben", contact_role="account_admin"),
    {"account_name": "Sunny Goods Inc", "account_email": "office@sunny.example", "account_phone": "+1 213 555 0100",
     "billing_line1": "1 Main St", "billing_city": "Los Angeles", "billing_region": "CA", "billing_postcode": "90001",
     "billing_country": "US", "shipping_line1": "9 Dock Rd", "shipping_city": "Long Beach",
     "shipping_region": "US-CA", "shipping_postcode": "90802", "shipping_country": "US",
     "contact_email": "Cleo@Sunny.example", "contact_first_name": "Cleo", "contact_last_name": "Sun",
     "contact_phone": "(213) 555-0101", "contact_language": "fr"},
    company("C200", "Elbe KG", "dora@elbe.example", "Dora"),
]


def write_csv(path: Path, rows: list[dict[str, str]], names: list[str] | None = None) -> Path:
    names = names or column_names([])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, names)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(db, settings, path: Path, store, **options: bool) -> imports.Report:
    chosen = imports.Options(**options)
    record = imports.begin(db, storefront_id=store.id, actor=ACTOR, file_name=path.name, options=chosen)
    return imports.run_file(db, settings, record, path, chosen, ACTOR)


def said(messages: list) -> list[str]:
    """A report's messages (kept as data) as the reader of the moment reads them."""
    return [i18n.shown(message) for message in messages]


def counted(db, model) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def snapshot(db) -> dict[str, list[tuple]]:
    """Every customer record, as tuples, to compare before and after."""
    with db.transaction() as session:
        return {
            "accounts": session.execute(select(Account.number, Account.name, Account.email, Account.phone,
                                               Account.status, Account.search_text).order_by(Account.id)).all(),
            "addresses": session.execute(select(Address.account_id, Address.line1, Address.city, Address.region,
                                                Address.postcode, Address.is_billing, Address.is_shipping)
                                         .order_by(Address.id)).all(),
            "contacts": session.execute(select(Contact.account_id, Contact.email, Contact.first_name, Contact.phone,
                                               Contact.language, Contact.role, Contact.status,
                                               Contact.password_hash).order_by(Contact.id)).all(),
            "attributes": session.execute(select(CustomAttributeValue.account_id, CustomAttributeValue.value)
                                          .order_by(CustomAttributeValue.id)).all(),
            "history": session.execute(select(func.count()).select_from(AuditEvent)).all(),
        }


@pytest.fixture
def store(db):
    return f.storefront(db, name="Harbour Supplies", default_language="de", account_number_prefix="H")


def test_a_file_creates_accounts_contacts_and_addresses_and_the_same_file_again_changes_nothing(db, settings, store,
                                                                                                 tmp_path):
    path = write_csv(tmp_path / "customers.csv", GOOD)
    first = run(db, settings, path, store)
    assert first.imported
    assert first.counts | {} == first.counts
    assert (first.counts["rows"], first.counts["created"], first.counts["failed"]) == (4, 4, 0)
    assert (first.counts["accounts_created"], first.counts["contacts_created"],
            first.counts["addresses_created"]) == (3, 4, 4)
    with db.transaction() as session:
        hafen = session.scalar(select(Account).where(Account.number == "C100"))
        sunny = session.scalar(select(Account).where(Account.email == "office@sunny.example"))
        assert sunny.number.startswith("H")  # the storefront's numbering
        assert (sunny.phone, sunny.preferred_language, sunny.storefront_id) == ("+12135550100", "de", store.id)
        assert {(a.region, a.is_billing, a.is_shipping) for a in sunny.addresses} == {("US-CA", True, False),
                                                                                     ("US-CA", False, True)}
        cleo = session.scalar(select(Contact).where(Contact.account_id == sunny.id))
        # as the forms store them: e-mail lower-cased, phone E.164 read in the billing country; no password
        assert (cleo.email, cleo.phone, cleo.language, cleo.status, cleo.password_hash) == (
            "cleo@sunny.example", "+12135550101", "fr", "invited", None)
        people = session.scalars(select(Contact).where(Contact.account_id == hafen.id).order_by(Contact.id)).all()
        assert [(c.email, c.phone, c.role, c.language) for c in people] == [
            ("anna@hafen.example", "+494012345 67".replace(" ", ""), "buyer", "de"),
            ("ben@hafen.example", "+49401234567", "account_admin", "de")]
        assert "anna@hafen.example" in hafen.search_text and "hamburg" in hafen.search_text
        assert accounts.search(session, None, q="ben@hafen").items[0].id == hafen.id
        events = session.scalars(select(AuditEvent).where(AuditEvent.account_id == hafen.id)).all()
        record = session.scalar(select(Import).order_by(Import.id.desc()))
        assert {e.action for e in events} == {"account.created", "address.added", "contact.created"}
        assert all(e.note == f"import {record.id} (customers.csv)" for e in events)
        assert all(e.actor_label == f"importer@staff.example · import {record.id}" for e in events)
        assert (record.status, record.actor_label, record.counts["counts"]["created"]) == (
            "imported", "importer@staff.example", 4)
    before = snapshot(db)
    again = run(db, settings, path, store)
    assert again.imported
    assert (again.counts["unchanged"], again.counts["created"], again.counts["updated"]) == (4, 0, 0)
    assert snapshot(db) == before


# country: (cities with their postcode and region, international and national form of a phone's first digits)
PLACES = {"DE": ([("Hamburg", "20457", ""), ("Köln", "50667", "")], "+49 40 123", "040 123"),
          "US": ([("Los Angeles", "90001", "CA"), ("Austin", "78701", "US-TX")], "+1 213 555 0", "(213) 555-0"),
          "GB": ([("London", "EC1A 1BB", ""), ("Leeds", "LS1 4AP", "")], "+44 20 7946 0", "020 7946 0"),
          "FR": ([("Paris", "75001", ""), ("Lyon", "69001", "")], "+33 1 42 68 5", "01 42 68 5"),
          "NL": ([("Amsterdam", "1012 AB", "")], "+31 20 123 4", "020 123 4")}
SHARED_OFFICES = ("books@ledger-partners.example", "finance@holding.example")  # one e-mail, several accounts
CONSULTANTS = ("olga@advisers.example", "piet@advisers.example")  # a contact of several accounts


def realistic_rows(accounts: int, seed: int = 12) -> tuple[list[dict[str, str]], set[int]]:
    """A file as customers send them: accounts by number, by ERP code, by e-mail or by nothing (new each time),
    one to three contacts each, addresses in five countries, phones local or international, account e-mails that
    several accounts share, contacts of several accounts (of accounts the file names), and a few rows with a phone
    the checks refuse; with the lines of those rows."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    bad_lines: set[int] = set()
    for n in range(accounts):
        country = rng.choice(sorted(PLACES))
        places, international, national = PLACES[country]
        city, postcode, region = rng.choice(places)
        shape = rng.random()
        account = {"account_name": f"Company {n} {country}", "account_phone": rng.choice((international, national))
                   + f"{n % 1000:03d}", "billing_line1": f"{n} Harbour Road", "billing_city": city,
                   "billing_postcode": postcode, "billing_region": region, "billing_country": country,
                   "account_language": rng.choice(("en", "fr", "de")), "customer_group": rng.choice(("", "trade"))}
        if shape < 0.75:
            account["account_number"] = f"R{n:05d}"
        if 0.6 < shape < 0.9:
            account["erp_code"] = f"erp-{n}"
        if shape < 0.8 and rng.random() < 0.1:
            account["account_email"] = rng.choice(SHARED_OFFICES)
        elif shape < 0.95:
            account["account_email"] = f"Office{n}@company{n}.example"
        if rng.random() < 0.25:
            account |= {"shipping_line1": f"{n} Dock Street", "shipping_city": city, "shipping_postcode": postcode,
                        "shipping_region": region, "shipping_country": country}
        people = [f"person{k}.{n}@company{n}.example" for k in range(rng.choice((1, 2, 3)))]
        if rng.random() < 0.15 and ("account_number" in account or "erp_code" in account):
            people.append(rng.choice(CONSULTANTS))
        for k, email in enumerate(people):
            phone = rng.choice((international, national)) + f"{(n + k * 7) % 1000:03d}"
            if rng.random() < 0.03:
                phone = "+1 12"
                bad_lines.add(len(rows) + 2)
            rows.append({**account, "contact_email": email, "contact_first_name": f"First{k}",
                         "contact_last_name": f"Last{n}", "contact_phone": phone,
                         "contact_role": "account_admin" if k == 0 else "buyer",
                         "contact_language": rng.choice(("", "fr", "de"))})
    return rows, bad_lines


def test_the_same_realistic_file_again_changes_nothing_and_reports_the_same_rows(db, settings, store, tmp_path,
                                                                                monkeypatch):
    monkeypatch.setattr(imports, "CHUNK", 64)  # many chunks: rows are matched to what earlier chunks wrote
    rows, bad_lines = realistic_rows(220)
    path = write_csv(tmp_path / "customers.csv", rows)
    first = run(db, settings, path, store, good_rows_only=True)
    assert first.imported and bad_lines
    failed = {row["line"]: row["messages"] for row in first.rows if row["outcome"] == "failed"}
    assert set(failed) == bad_lines, failed
    assert first.counts["created"] == len(rows) - len(bad_lines)
    before = snapshot(db)

    dry = run(db, settings, path, store, good_rows_only=True, dry_run=True)
    again = run(db, settings, path, store, good_rows_only=True)
    assert again.imported and (dry.counts, dry.rows) == (again.counts, again.rows)
    assert (again.counts["created"], again.counts["updated"], again.counts["skipped"]) == (0, 0, 0), [
        row for row in again.rows if row["outcome"] != "unchanged"]
    assert again.counts["unchanged"] == len(rows) - len(bad_lines)
    assert {row["line"]: row["messages"] for row in again.rows if row["outcome"] == "failed"} == failed
    assert [row for row in again.rows if row["messages"]] == [row for row in first.rows if row["messages"]]
    assert snapshot(db) == before
    with db.transaction() as session:  # the shared e-mails really are on several accounts
        assert session.scalar(select(func.count()).where(Account.email == SHARED_OFFICES[0])) > 1
        assert session.scalar(select(func.count()).where(Contact.email == CONSULTANTS[0])) > 1


def test_a_dry_run_reports_what_the_import_does_and_changes_nothing(db, settings, store, tmp_path):
    path = write_csv(tmp_path / "customers.csv", GOOD)
    before = snapshot(db)
    dry = run(db, settings, path, store, dry_run=True)
    assert not dry.imported
    assert snapshot(db) == before
    with db.transaction() as session:
        assert session.scalar(select(Import.status).order_by(Import.id.desc())) == "dry_run"
    real = run(db, settings, path, store)
    assert {k: v for k, v in dry.counts.items()} == real.counts
    assert dry.rows == [row | {"account": row["account"]} for row in real.rows]


def test_a_bad_row_in_the_middle_stops_the_file_unless_good_rows_only(db, settings, store, tmp_path):
    bad = {**GOOD[2], "billing_region": "", "contact_phone": "+1 12", "contact_language": "xx"}
    path = write_csv(tmp_path / "customers.csv", [GOOD[0], GOOD[1], bad, GOOD[3]])
    refused = run(db, settings, path, store)
    assert not refused.imported
    assert (refused.counts["failed"], refused.counts["created"]) == (1, 3)
    assert counted(db, Account) == counted(db, Contact) == counted(db, AuditEvent) == 0
    [problem] = [row for row in refused.rows if row["outcome"] == "failed"]
    assert problem["line"] == 4
    # the product's own words, each behind its column
    assert "billing_region: Choose a state or province." in said(problem["messages"])
    assert "contact_language: Choose one of the options." in said(problem["messages"])
    assert "contact_phone: This phone number is not valid." in said(problem["messages"])

    good = run(db, settings, path, store, good_rows_only=True)
    assert good.imported and good.counts["failed"] == 1
    with db.transaction() as session:
        assert session.scalars(select(Account.number).order_by(Account.number)).all() == ["C100", "C200"]
    assert counted(db, Contact) == 3


def test_rows_are_matched_by_number_erp_code_or_email_and_update_existing_changes_them(db, settings, store, tmp_path):
    path = write_csv(tmp_path / "customers.csv", GOOD)
    run(db, settings, path, store)
    changed = [{**GOOD[0], "account_name": "Hafen Handel GmbH", "contact_first_name": "Annika"},
               {**GOOD[1], "account_name": "Hafen Handel GmbH"},
               {**GOOD[2], "billing_city": "Pasadena", "billing_postcode": "91101"},  # matched by its e-mail
               {k: v for k, v in GOOD[3].items() if not k.startswith("account_") or k == "account_name"}]
    write_csv(path, changed)
    before = snapshot(db)
    left = run(db, settings, path, store)
    assert snapshot(db) == before
    assert left.imported, left.rows
    assert (left.counts["skipped"], left.counts["unchanged"]) == (2, 2)  # Elbe KG: matched by Dora's e-mail
    notes = {row["line"]: " ".join(said(row["messages"])) for row in left.rows if row["messages"]}
    assert "account_name" in notes[2] and "contact_first_name" in notes[2] and "update existing" in notes[2]
    assert "billing_city, billing_postcode" in notes[4]

    updated = run(db, settings, path, store, update_existing=True)
    assert (updated.counts["updated"], updated.counts["accounts_updated"], updated.counts["contacts_updated"],
            updated.counts["addresses_updated"]) == (2, 1, 1, 1)
    with db.transaction() as session:
        hafen = session.scalar(select(Account).where(Account.number == "C100"))
        assert hafen.name == "Hafen Handel GmbH"
        event = session.scalar(select(AuditEvent).where(AuditEvent.account_id == hafen.id,
                                                        AuditEvent.action == "account.updated"))
        assert event.changes == {"name": ["Hafen GmbH", "Hafen Handel GmbH"]}
        assert "· import" in event.actor_label
        assert session.scalar(select(Address.city).where(Address.city == "Pasadena")) == "Pasadena"
    assert run(db, settings, path, store, update_existing=True).counts["unchanged"] == 4


def test_a_row_of_a_contact_alone_is_matched_by_its_email_on_the_storefront_only(db, settings, store, tmp_path):
    elsewhere = f.storefront(db)
    f.contact(db, f.account(db, number="X1"), elsewhere, email="olga@advisers.example", first_name="Olga")
    row = {"contact_email": "olga@advisers.example", "contact_first_name": "Olga", "contact_last_name": "Meyer",
           "contact_phone": "+49 40 1234567"}
    path = write_csv(tmp_path / "contacts.csv", [row])
    here = run(db, settings, path, store, dry_run=True)
    assert (here.counts["failed"], said(here.rows[0]["messages"])) == (1, ["account_name: This field is required."])
    there = run(db, settings, path, elsewhere, dry_run=True)
    assert (there.counts["failed"], there.rows[0]["account"]) == (0, "X1")


def test_welcome_emails_are_spaced_out_and_their_links_last_until_after_their_turn(db, settings, store, tmp_path):
    settings = settings.model_copy(update={"import_welcome_per_minute": 2})
    path = write_csv(tmp_path / "customers.csv", GOOD)
    report = run(db, settings, path, store, send_welcome=True)
    assert report.counts["welcome_emails"] == 4
    with db.transaction() as session:
        waiting = session.scalars(select(OutboxMessage).order_by(OutboxMessage.next_attempt_at)).all()
        assert [m.payload["template"] for m in waiting] == ["activation"] * 4
        gaps = [b.next_attempt_at - a.next_attempt_at for a, b in zip(waiting, waiting[1:], strict=False)]
        assert gaps == [timedelta(seconds=30)] * 3
        tokens = session.scalars(select(SingleUseToken).order_by(SingleUseToken.expires_at)).all()
        lasting = [t.expires_at - m.next_attempt_at for t, m in zip(tokens, waiting, strict=True)]
        assert all(abs(d - timedelta(hours=settings.activation_token_hours)) < timedelta(minutes=1) for d in lasting)
        latest = waiting[-1].next_attempt_at
    write_csv(path, [company("C300", "Later AG", "eva@later.example", "Eva")])
    run(db, settings, path, store, send_welcome=True)
    with db.transaction() as session:  # the next import's welcomes queue behind the first one's
        last = session.scalar(select(func.max(OutboxMessage.next_attempt_at)))
        assert last - latest == timedelta(seconds=30)


def make_customers(db, store) -> None:
    with db.transaction() as session:
        session.add_all([CustomAttributeDefinition(key="segment", label="Segment", type="choice",
                                                   choices=["retail", "trade"], position=1),
                         CustomAttributeDefinition(key="since", label="Customer since", type="date", position=2)])
    billing = {"line1": "=1 Formula Way", "city": "Springfield", "region": "US-IL", "postcode": "62701",
               "country": "US"}
    first = f.account(db, name="-Dash & Co", storefront_id=store.id, phone="+12175550142", billing=billing,
                      erp_code="ERP-1", attributes={"segment": "trade", "since": "2020-02-29"})
    f.contact(db, first, store, first_name="Zoë", last_name="O'Brien", email="zoe@dash.example", phone="")
    f.contact(db, first, store, first_name="Al", last_name="Smith", email="al@dash.example", phone="+12175550143",
              role="account_admin")
    f.account(db, name="Quiet Ltd", storefront_id=store.id, billing={"line1": "1 Quay", "city": "London",
                                                                      "postcode": "EC1A 1BB", "country": "GB"})


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_then_import_changes_nothing(db, settings, store, tmp_path, suffix):
    make_customers(db, store)
    path = tmp_path / f"customers.{suffix}"
    with db.transaction() as session:
        assert export_file(session, store, path) == 3
    header, rows = read_rows(path, suffix)
    assert header == column_names(["segment", "since"])
    exported = [cells for _, cells in rows]
    assert exported[0]["billing_line1"] == "=1 Formula Way" and exported[0]["account_name"] == "-Dash & Co"
    assert exported[0]["attribute.since"] == "2020-02-29"
    before = snapshot(db)
    report = run(db, settings, path, store)
    assert report.imported and report.counts["unchanged"] == 3, report.rows
    assert snapshot(db) == before
    again = tmp_path / f"again.{suffix}"
    with db.transaction() as session:
        export_file(session, store, again)
    assert [cells for _, cells in read_rows(again, suffix)[1]] == exported


def test_the_header_must_be_the_templates(db, settings, store, tmp_path):
    path = write_csv(tmp_path / "odd.csv", [{"account_name": "A", "colour": "red"}], ["account_name", "colour"])
    report = run(db, settings, path, store)
    assert not report.imported
    assert said(report.problems) == ["Unknown column colour: the columns are those of the template."]
    with i18n.speaking("de"):
        assert said(report.problems) == ["Unbekannte Spalte colour: Die Spalten sind die der Vorlage."]


def test_the_command_line_imports_with_a_progress_bar_and_exports(db, settings, store, tmp_path):
    path = write_csv(tmp_path / "customers.csv", GOOD)
    env = clean_environment(ACCOUNTDESK_DATABASE_URL=db.url, LC_ALL="C.UTF-8")  # the report in English

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "accountdesk.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    dry = command("import", str(path), "--dry-run", "--storefront", store.slug)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "4 rows: 4 created" in dry.stdout and "nothing was changed" in dry.stdout
    assert counted(db, Account) == 0
    done = command("import", str(path), "--storefront", store.slug)
    assert done.returncode == 0 and "imported" in done.stdout, done.stdout
    assert counted(db, Contact) == 4
    out = tmp_path / "out.xlsx"
    exported = command("export", str(out), "--storefront", store.slug)
    assert exported.returncode == 0 and "4 rows written" in exported.stdout
    again = command("import", str(out), "--storefront", store.slug)
    assert "4 unchanged" in again.stdout, again.stdout
    write_csv(path, [{**GOOD[0], "billing_country": "ZZ"}])
    refused = command("import", str(path), "--storefront", store.slug)
    assert refused.returncode == 1
    assert "billing_country: Choose a country (ISO 3166 two-letter code)." in refused.stdout
    assert "nothing was imported" in refused.stdout


def test_the_command_line_reports_in_the_language_asked_for_else_the_locales(db, settings, store, tmp_path):
    path = write_csv(tmp_path / "customers.csv", [GOOD[0], {**GOOD[1], "billing_country": "ZZ"}])

    def command(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in clean_environment(ACCOUNTDESK_DATABASE_URL=db.url, **environment).items()
               if key not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG") or key in environment}
        return subprocess.run([sys.executable, "-m", "accountdesk.cli", "import", str(path), "--storefront",
                               store.slug, *args], env=env, capture_output=True, text=True, timeout=120)

    german = command("--dry-run", "--language", "de", LANG="fr_FR.UTF-8")
    assert german.returncode == 0, german.stdout + german.stderr
    assert "2 Zeilen: 1 angelegt, 0 geändert, 0 unverändert, 0 belassen, 1 mit Problemen" in german.stdout
    assert "Zeile 3 (mit Problemen): billing_country: Wählen Sie ein Land" in german.stdout
    assert "Probelauf (Import " in german.stdout and "nichts wurde geändert" in german.stdout
    assert " rows" not in german.stdout and "created" not in german.stdout
    french = command(LC_ALL="fr_FR.UTF-8", LANG="de_DE.UTF-8")  # LC_ALL wins over LANG
    assert french.returncode == 1
    assert "ligne 3 (avec des problèmes) : billing_country : " in french.stdout, french.stdout
    assert "rien n'a été importé (import " in french.stdout and "--good-rows-only" in french.stdout
    assert counted(db, Account) == 0
    unknown = command("--dry-run", LANG="es_ES.UTF-8")  # not one of ours: English
    assert "2 rows: 1 created" in unknown.stdout and "line 3 (with problems): " in unknown.stdout
    refused = command("--language", "es")
    assert refused.returncode == 2 and "es" in refused.stderr


def test_the_console_previews_an_upload_and_imports_it_on_confirmation(db, settings, client, store, tmp_path):
    settings.import_dir = tmp_path / "imports"
    admin = f.staff(db, "admin")
    console_sign_in(client, admin)
    form = client.get("/console/imports")
    assert form.status_code == 200
    template = client.get("/console/imports/template.csv")
    assert template.text.lstrip("\ufeff").splitlines()[0] == ",".join(column_names([]))
    assert client.get("/console/imports/template.xlsx").content[:2] == b"PK"
    data = write_csv(tmp_path / "customers.csv", GOOD).read_bytes()
    preview = client.post("/console/imports", data={"csrf_token": csrf_of(form.text), "storefront_id": store.id},
                          files={"file": ("customers.csv", data, "text/csv")})
    assert preview.status_code == 200 and "Preview of customers.csv" in preview.text
    assert counted(db, Account) == 0
    [kept] = list((tmp_path / "imports").iterdir())  # the upload waits on the server, not in the browser
    confirmed = client.post(preview.url.path + "/confirm", data={"csrf_token": csrf_of(preview.text)})
    assert confirmed.status_code == 200 and "Imported." in confirmed.text
    assert counted(db, Contact) == 4 and not kept.exists()
    twice = client.post(preview.url.path + "/confirm", data={"csrf_token": csrf_of(preview.text)})
    assert twice.status_code == 409
    csr_only = client.post("/console/imports", data={"csrf_token": csrf_of(form.text), "storefront_id": store.id},
                           files={"file": ("notes.txt", b"x", "text/plain")})
    assert csr_only.status_code == 422 and "Choose a .csv or .xlsx file." in csr_only.text


def test_approvers_and_reseller_staff_may_not_import(db, client, store):
    for role in ("approver",):
        console_sign_in(client, f.staff(db, role))
        assert client.get("/console/imports").status_code == 403


def test_the_cycle_collector_gets_its_thresholds_back_when_the_last_import_ends():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), imports.fewer_collections():
        with imports.fewer_collections():  # two imports under way at once
            assert gc.get_threshold()[0] == max(before[0], imports.COLLECT_AFTER)
        assert gc.get_threshold()[0] == max(before[0], imports.COLLECT_AFTER)
        raise RuntimeError("an import that fails half way")
    assert gc.get_threshold() == before


def test_a_new_records_history_is_written_as_the_json_of_its_change_list():
    values = {"name": "Schröder & Braun \"GmbH\"\n", "kind": AccountKind.b2b, "email": "", "erp_code": None,
              "is_billing": True, "is_shipping": False, "credit": Decimal("12.50"), "count": 3, "share": 0.25,
              "born": date(2020, 2, 29), "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "password": "secret",
              "notes": "\u2028 ☃ \U0001f600"}
    assert audit.created_json(values) == json.dumps(audit.created(values))
    assert audit.created_json({}) == json.dumps(audit.created({}))


def test_bulk_rows_alike_or_not_are_stored_as_given_with_the_values_they_share_and_the_columns_defaults(db):
    alike = [{"subject_type": "account", "subject_id": n, "action": "account.created",
              "changes": JsonText(audit.created_json({"name": f"A{n}"}))} for n in range(3)]
    unlike = [{**alike[0], "note": "with a note"}, {**alike[1], "actor_label": "someone"},
              {"action": "x", "subject_type": "y", "subject_id": 9, "changes": {"n": [None, 1]}}]
    with db.transaction() as session:
        ids = insert_rows(session, AuditEvent.__table__, alike, ids=True, same={"actor_type": "system"}) + insert_rows(
            session, AuditEvent.__table__, unlike, ids=True, same={"actor_type": "staff", "account_id": None})
    with db.transaction() as session:
        stored = session.execute(select(AuditEvent.id, AuditEvent.actor_type, AuditEvent.subject_id,
                                        AuditEvent.actor_label, AuditEvent.note, AuditEvent.changes)
                                 .order_by(AuditEvent.id)).all()
    assert [row[0] for row in stored] == ids
    assert [tuple(row[1:]) for row in stored] == [
        ("system", 0, "", "", {"name": [None, "A0"]}), ("system", 1, "", "", {"name": [None, "A1"]}),
        ("system", 2, "", "", {"name": [None, "A2"]}), ("staff", 0, "", "with a note", {"name": [None, "A0"]}),
        ("staff", 1, "someone", "", {"name": [None, "A1"]}), ("staff", 9, "", "", {"n": [None, 1]})]


def test_rows_sent_to_a_writer_are_stored_in_order_once_waited_for_and_its_errors_raised_by_wait(db):
    """PostgreSQL's COPYs go from the writer's thread; SQLite's rows are written at once, writer or not."""
    rows = [{"subject_type": "account", "subject_id": n, "action": "account.created", "changes": {}}
            for n in range(5)]
    with db.transaction() as session, Writer() as writer:
        ids = take_ids(session, AuditEvent.__table__, 5)
        insert_rows(session, AuditEvent.__table__, rows[:2], given_ids=ids[:2], writer=writer,
                    same={"actor_type": "system"})
        insert_rows(session, AuditEvent.__table__, rows[2:], given_ids=ids[2:], writer=writer,
                    same={"actor_type": "system"})
        writer.wait()
        stored = session.execute(select(AuditEvent.id, AuditEvent.subject_id).order_by(AuditEvent.id)).all()
    assert [tuple(row) for row in stored] == list(zip(ids, range(5), strict=True))
    taken = (sqlite3.IntegrityError, psycopg.IntegrityError)  # the drivers' own: the rows go to them directly
    with pytest.raises(taken), db.transaction() as session, Writer() as writer:
        insert_rows(session, AuditEvent.__table__, rows[:1], given_ids=ids[:1], writer=writer,
                    same={"actor_type": "system"})  # an id already taken
        writer.wait()
    assert counted(db, AuditEvent) == 5


@pytest.mark.parametrize(("start", "part"), [("fork", 250), ("spawn", 250), ("fork", 2)])
def test_rows_checked_in_worker_processes_come_out_as_checked_here(tmp_path, monkeypatch, start, part):
    """Whichever parts of a chunk the importing process takes on (a part of 2 rows: some, most likely)."""
    monkeypatch.setattr(imports, "_start_method", lambda: start)
    monkeypatch.setattr(imports, "PART", part)
    rows = [dict(row, account_number=f"N{n // 2}") for n, row in enumerate(GOOD * 5)]
    path = write_csv(tmp_path / "customers.csv", rows + [{**GOOD[0], "billing_country": "ZZ"}])
    here = [r for chunk in imports.checked_chunks(read_rows(path, "csv")[1], {}, size=3, workers=0) for r in chunk]
    there = [r for chunk in imports.checked_chunks(read_rows(path, "csv")[1], {}, size=3, workers=2) for r in chunk]
    assert [(r.line, r.cells, r.account, r.contact, r.problems) for r in there] == [
        (r.line, r.cells, r.account, r.contact, r.problems) for r in here]
    assert len(here) == 21
    assert said(here[-1].problems) == ["billing_country: Choose a country (ISO 3166 two-letter code)."]


def test_the_console_shows_an_imports_messages_in_the_readers_language(db, settings, client, store, tmp_path):
    """Problems and notes are kept as words and values, so a German reader reads them in German, names and lines
    put in where they belong (and an English one in English, from the same report)."""
    settings.import_dir = tmp_path / "imports"
    admin = f.staff(db, "admin")
    with db.transaction() as session:
        session.get(StaffUser, admin.id).language = "de"
    console_sign_in(client, admin)
    form = client.get("/console/imports")
    twice = [GOOD[0], {**GOOD[0], "account_name": "Hafen AG"}, {**GOOD[3], "contact_first_name": ""}]
    data = write_csv(tmp_path / "customers.csv", twice).read_bytes()
    preview = client.post("/console/imports", data={"csrf_token": csrf_of(form.text), "storefront_id": store.id},
                          files={"file": ("customers.csv", data, "text/csv")})
    assert preview.status_code == 200
    shown = " ".join(preview.text.split())
    assert "account: Die Spalten des Kundenkontos weichen von Zeile 2 ab, die dasselbe Kundenkonto hat." in shown
    assert "contact_first_name: Dieses Feld ist erforderlich." in shown
    assert "differ from line" not in shown and "This field is required." not in shown
    refused = client.post(preview.url.path + "/cancel", data={"csrf_token": csrf_of(preview.text)})
    assert refused.status_code == 200 and "customers.csv wurde nicht importiert." in refused.text
