"""The `accountdesk` command, run as a real process against each database."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import select

from accountdesk.mail import service as mail
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.conftest import clean_environment, free_port
from tests.mailbox import read_folder, wait_for

BIN = Path(sys.executable).parent / "accountdesk"


def _env(db, **extra: str) -> dict[str, str]:
    return clean_environment(ACCOUNTDESK_DATABASE_URL=db.url, **extra)


def _run(db, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=_env(db, **extra), capture_output=True, text=True, timeout=120)


def _interruptible() -> None:
    """A shell's background job ignores SIGINT and its children inherit that: give the command Ctrl+C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def _started(db, *args: str, **extra: str) -> Iterator[subprocess.Popen[str]]:
    """`accountdesk ARGS` running in the background, stopped with Ctrl+C (SIGINT) at the end as a user stops it;
    one that does not stop is killed, so it cannot go on working on the test database, and the test fails."""
    process = subprocess.Popen([str(BIN), *args], env=_env(db, **extra), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=_interruptible)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
            raise AssertionError(f"accountdesk {' '.join(args)} did not stop on SIGINT:\n{output[-2000:]}") from None


def test_help_reads_well():
    out = subprocess.run([str(BIN), "--help"], env=clean_environment(), capture_output=True, text=True).stdout
    for command in ("serve", "worker", "db", "demo", "create-staff"):
        assert command in out


def test_upgrade_and_create_staff(db, client):
    assert _run(db, "db", "upgrade").returncode == 0  # already at head: nothing to do, no error
    made = _run(db, "create-staff", "--email", "Ops@Example.com", "--password", "a-long-staff-password",
                "--role", "csr")
    assert made.returncode == 0, made.stdout + made.stderr
    token = client.post("/api/v1/staff/tokens", json={"email": "ops@example.com", "password": "a-long-staff-password"})
    assert token.status_code == 201 and token.json()["role"] == "csr"
    again = _run(db, "create-staff", "--email", "ops@example.com", "--password", "a-long-staff-password")
    assert again.returncode == 1
    weak = _run(db, "create-staff", "--email", "x@example.com", "--password", "short")
    assert weak.returncode == 1 and "at least 12" in weak.stdout


def test_create_staff_says_each_password_problem_once(db):
    """The refusal's message and its field message list the same problems: each is printed once."""
    weak = _run(db, "create-staff", "--email", "operator@example.com", "--password", "operator1")
    assert weak.returncode == 1
    said = " ".join(weak.stdout.split())
    for problem in ("Use at least 12 characters.", "This password is too common; choose one that is harder to guess.",
                    "Do not use your name or e-mail address in the password."):
        assert said.count(problem) == 1, said
    with db.transaction() as session:
        assert session.scalar(select(StaffUser.id)) is None


def test_create_staff_puts_reseller_staff_on_reseller_accounts_only(db):
    customer, reseller = f.account(db, name="Plain Customer"), f.account(db, kind="reseller")
    args = ("create-staff", "--email", "r@example.com", "--password", "a-long-staff-password", "--role",
            "reseller_admin", "--reseller-account")
    refused = _run(db, *args, customer.number)
    assert refused.returncode == 1
    assert f"Account {customer.number} (Plain Customer) is not a reseller" in " ".join(refused.stdout.split())
    made = _run(db, *args, reseller.number)
    assert made.returncode == 0, made.stdout + made.stderr
    with db.transaction() as session:
        assert session.scalar(select(StaffUser.reseller_account_id)) == reseller.id


def test_standalone_worker_delivers(db, tmp_path):
    with db.transaction() as session:
        mail.send(session, "registration_received", "cli@example.com",
                  context={"name": "C", "storefront_name": "S", "account_name": "A"})
    with _started(db, "worker", ACCOUNTDESK_MAIL_DIR=str(tmp_path), ACCOUNTDESK_OUTBOX_POLL_SECONDS="0.2"):
        [message] = wait_for(lambda: read_folder(tmp_path), timeout=30)
    assert message["To"] == "cli@example.com"


def test_serve_with_two_processes(db):
    port = free_port()
    with _started(db, "serve", "--port", str(port), "--workers", "2") as process:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "server did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["database"] in ("sqlite", "postgresql")
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()["info"]["title"] == "accountdesk"
        assert httpx.get(f"http://127.0.0.1:{port}/no-such-page?probe=1").status_code == 404
    # each request in the access log, in uvicorn's words
    output = process.stdout.read()
    for line in ('"GET /openapi.json HTTP/1.1" 200 OK', '"GET /no-such-page?probe=1 HTTP/1.1" 404 Not Found'):
        assert re.search(rf"^INFO:     127\.0\.0\.1:\d+ - {re.escape(line)}$", output, re.MULTILINE), output
