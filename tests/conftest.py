"""Test fixtures: every database test runs on SQLite and on PostgreSQL, against migrated schemas, with real parts.

With CI=true a missing PostgreSQL or browser is an error; on a laptop without them those tests skip and say why.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

# The PostgreSQL server the tests use is the one knob read from the caller's shell.
PG_ADMIN_URL = os.environ.get("ACCOUNTDESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_MAIL_DIR = Path(tempfile.mkdtemp(prefix="accountdesk-mail-"))
# Every other ACCOUNTDESK_* variable of the caller's shell (as the README's table invites) is dropped before the
# app is imported, so a test's outcome never depends on it; these are the only settings the tests set themselves.
# Cheap argon2 parameters keep the suite fast; bench/ measures the real ones.
TEST_ENVIRONMENT = {
    "ACCOUNTDESK_ARGON2_MEMORY_KIB": "1024",
    "ACCOUNTDESK_ARGON2_TIME_COST": "1",
    "ACCOUNTDESK_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
    "ACCOUNTDESK_MAIL_DIR": str(_MAIL_DIR),
}


def clean_environment(**settings: str) -> dict[str, str]:
    """The caller's environment without any ACCOUNTDESK_* variable, plus the test settings and `settings`:
    what a subprocess (the `accountdesk` command) gets."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith("ACCOUNTDESK_")}
    return {**kept, **TEST_ENVIRONMENT, **settings}


for _key in [key for key in os.environ if key.startswith("ACCOUNTDESK_")]:
    del os.environ[_key]
os.environ.update(TEST_ENVIRONMENT)

import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from accountdesk.app import create_app, initial_state  # noqa: E402
from accountdesk.core import security  # noqa: E402
from accountdesk.core.db import Database  # noqa: E402
from accountdesk.core.migrate import upgrade  # noqa: E402
from accountdesk.core.settings import Settings, get_settings  # noqa: E402
from accountdesk.core.web import proxy_options  # noqa: E402
from accountdesk.models import Base  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# What rows made without an app (factories) are hashed and digested with; every app a test makes binds its own.
security.bind(get_settings())
REDIS_URL = "redis://127.0.0.1:6379/15"
BACKENDS = ["sqlite", "postgresql"]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this must not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database | str]]:
    made: dict[str, Database | str] = {}
    yield made
    for value in made.values():
        if isinstance(value, Database):
            value.dispose()
    if "postgresql" in made and isinstance(made["postgresql"], Database):
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{made["postgresql"].engine.url.database}" WITH (FORCE)'))
        admin.dispose()


def _make_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Database:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    else:
        name = f"accountdesk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001
            raise RuntimeError(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}") from exc
        finally:
            admin.dispose()
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return Database(url)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, _databases: dict,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A migrated database on each backend, emptied after every test."""
    kind = request.param
    if kind not in _databases:
        try:
            _databases[kind] = _make_database(kind, tmp_path_factory)
        except RuntimeError as exc:
            _databases[kind] = str(exc)
    database = _databases[kind]
    if isinstance(database, str):
        _unavailable(database)
    yield database
    _empty(database)


def _empty(database: Database) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables]
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if database.is_postgresql:
            # DELETE, not TRUNCATE: a TRUNCATE of every table writes new files for each (0.2–0.8 s a test); with
            # foreign-key triggers off (replica role) the order does not matter. Used sequences start again at 1.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("; ".join(f"DELETE FROM {table}" for table in tables))
            cursor.execute("SELECT setval(format('%I.%I', schemaname, sequencename), 1, false) FROM pg_sequences"
                           " WHERE last_value IS NOT NULL")
            cursor.execute("SET session_replication_role = DEFAULT")
            raw.commit()
        else:
            cursor.execute("PRAGMA foreign_keys=OFF")
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()
    if not database.is_postgresql:
        _empty_rate_limit_sidecar(database)


def _empty_rate_limit_sidecar(database: Database) -> None:
    import sqlite3

    path = Path(database.url.split("///", 1)[-1] + ".ratelimits")
    if path.exists():
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM rate_limit_hits")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the rate-limit tests share (database 15); like PostgreSQL, it must be there under CI=true."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def mail_dir() -> Iterator[Path]:
    for old in _MAIL_DIR.glob("*.eml"):
        old.unlink()
    yield _MAIL_DIR


@pytest.fixture
def settings(db: Database, mail_dir: Path) -> Iterator[Settings]:
    # pinned so that an ACCOUNTDESK_* variable of the caller's shell cannot change what a test sees
    yield get_settings().model_copy(update={"database_url": db.url, "mail_dir": mail_dir,
                                            "staff_totp_required_for_admins": False})
    security.bind(get_settings())  # a test's app with keys of its own does not leave them to the next test


_APPS: dict[tuple[str, str], FastAPI] = {}


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    """The app of these settings, in the state `create_app` leaves it. Built once per worker and settings: FastAPI
    builds each app's route handling at its first requests (~0.2 s of CPU), and every test would pay for it."""
    key = (db.url, settings.model_dump_json())
    built = _APPS.get(key)
    if built is None:
        built = _APPS[key] = create_app(settings, db)
    else:
        security.bind(settings)
        built.state = initial_state(settings, db)  # nothing a test put there before (its ERP, other settings)
        built.dependency_overrides.clear()
    return built


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    """The app served by uvicorn on a loopback port, with its outbox worker thread, for browsers and real HTTP."""
    import uvicorn

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    live_settings = settings.model_copy(update={"base_url": base, "outbox_poll_seconds": 0.2})
    app = create_app(live_settings, db, run_worker=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1,
                                                limit_concurrency=live_settings.max_concurrent_requests,
                                                **proxy_options(live_settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """One Debian chromium for the whole session, driven by Playwright (never a downloaded browser)."""
    executable = "/usr/bin/chromium"
    if not Path(executable).exists():
        _unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server: str):
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test` runs two workers), every test that drives chromium goes to one worker, so one
    browser serves the whole run; the rest spread over both."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("browser"))
