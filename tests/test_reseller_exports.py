"""Customers.xlsx / Customers.csv: the grid's columns with the current search, streamed from a server-side cursor
into a constant-memory writer."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import openpyxl
from sqlalchemy import text

from accountdesk.core import exports
from accountdesk.resellers import service as resellers
from tests import factories as f
from tests.reseller_world import customer, subscription, world

HEADER = ("Number", "Name", "Phone", "City", "E-mail", "Monthly run rate", "Storefront access")


def _sheet_rows(content: bytes) -> list[tuple]:
    return list(openpyxl.load_workbook(io.BytesIO(content), read_only=True).active.iter_rows(values_only=True))


def test_customers_xlsx_holds_exactly_the_searched_rows_in_grid_order(db, client):
    w = world(db, client)
    harbor = [customer(db, w, name=f"Harbor Supplies {n:02d}", phone="+12175550142") for n in range(12)]
    for n in range(8):
        customer(db, w, name=f"Inland Goods {n}")
    customer(db, world(db), name="Harbor Supplies Elsewhere")  # another reseller's customer with the same words
    f.contact(db, harbor[3], w.storefront)
    subscription(db, w, harbor[5], "49.95")
    response = client.get(f"{w.base}/customers/export", params={"q": "harbor supplies"}, headers=w.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == exports.MEDIA_TYPES["xlsx"]
    assert response.headers["content-disposition"] == 'attachment; filename="Customers.xlsx"'
    rows = _sheet_rows(response.content)
    assert rows[0] == HEADER
    assert [r[1] for r in rows[1:]] == [c.name for c in harbor]
    assert rows[1 + 3][6] == "Yes" and rows[1 + 2][6] == "No"
    assert rows[1 + 5][5] == 49.95 and rows[1][5] == 0
    assert rows[1][0] == harbor[0].number and rows[1][2] == "+12175550142" and rows[1][3] == "Springfield"
    everything = _sheet_rows(client.get(f"{w.base}/customers/export", headers=w.headers).content)
    assert len(everything) == 1 + 20


def test_customers_csv_matches_the_search_and_defuses_formulas(db, client):
    w = world(db, client)
    customer(db, w, name="=HYPERLINK(\"http://evil\") Corp", phone="+441134960123")
    customer(db, w, name="Plain Corp")
    response = client.get(f"{w.base}/customers/export", params={"q": "corp", "format": "csv",
                                                                 "sort": "-name"}, headers=w.headers)
    assert response.headers["content-disposition"] == 'attachment; filename="Customers.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == list(HEADER) and len(rows) == 3
    assert rows[1][1] == "Plain Corp" and rows[2][1] == "'=HYPERLINK(\"http://evil\") Corp"
    assert rows[2][2] == "+441134960123" and rows[1][5] == "0.00" and rows[1][6] == "No"
    assert client.get(f"{w.base}/customers/export", params={"format": "pdf"}, headers=w.headers).status_code == 422
    german = client.get(f"{w.base}/customers/export", params={"q": "plain", "format": "csv"},
                        headers={**w.headers, "Accept-Language": "de-DE"})
    rows = list(csv.reader(io.StringIO(german.content.decode("utf-8-sig"))))
    assert rows[0] != list(HEADER) and rows[1][6] == "Nein"  # titles and yes/no in German


def test_export_reads_through_a_server_side_cursor_in_batches(db):
    w = world(db)
    for n in range(5):
        customer(db, w, name=f"Batch {n}")
    with db.transaction() as session:
        reseller = resellers.get_reseller(session, None, w.reseller.id)
        rows = resellers.export_rows(session, reseller, batch=2)
        first = next(rows)
        if db.is_postgresql:  # the rows come from a DECLAREd cursor, not from one big result in memory
            assert session.execute(text("SELECT count(*) FROM pg_cursors")).scalar() == 1
        assert [first[1], *[r[1] for r in rows]] == [f"Batch {n}" for n in range(5)]


def test_xlsx_rows_go_straight_to_disk(tmp_path):
    """Constant-memory mode writes each row to the sheet's temp file as it comes, so strings are inline (no shared
    strings table held in memory until the end). Its memory figures are in the bench (resellers section)."""
    rows = ((f"W{n:06d}", f"Customer {n} GmbH", "+4930123456", "Berlin", f"c{n}@example.com",
             Decimal(n % 997) / 10, n % 3 == 0) for n in range(3_000))
    path = tmp_path / "Customers.xlsx"

    assert exports.write_xlsx(path, "Customers", resellers.EXPORT_COLUMNS, rows) == 3_000

    with zipfile.ZipFile(path) as workbook:
        assert "xl/sharedStrings.xml" not in workbook.namelist()
        assert 't="inlineStr"' in workbook.read("xl/worksheets/sheet1.xml").decode()
    sheet = _sheet_rows(path.read_bytes())
    assert len(sheet) == 3_001 and sheet[0] == HEADER
    assert sheet[-1] == ("W002999", "Customer 2999 GmbH", "+4930123456", "Berlin", "c2999@example.com", 0.8, "No")
