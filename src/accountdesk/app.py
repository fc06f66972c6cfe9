"""The application factory: one FastAPI app serving the JSON API, the console and the storefront pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from accountdesk.core import headers
from accountdesk.core.db import Database
from accountdesk.core.forms import CsrfCookieMiddleware
from accountdesk.core.headers import SecurityHeadersMiddleware
from accountdesk.core.outbox import Handlers
from accountdesk.core.ratelimit import RateLimits
from accountdesk.core.settings import Settings, get_settings
from accountdesk.core.web import (
    ERROR_RESPONSES,
    PACKAGE,
    error_response,
    install_error_handlers,
    refuse_unstorable_text,
)

# Matched in this order, route by route: the storefront API's sign-in and registration, the busiest routes, come
# first (no route before them matches any of their paths, so the order changes no answer).
ROUTERS = [
    "accountdesk.signin.routes",
    "accountdesk.registration.routes",
    "accountdesk.staff.routes",
    "accountdesk.staff.pages",
    "accountdesk.staff_admin.routes",
    "accountdesk.staff_admin.pages",
    "accountdesk.staff_admin.account_pages",
    "accountdesk.accounts.routes",
    "accountdesk.accounts.pages",
    "accountdesk.contacts.routes",
    "accountdesk.contacts.pages",
    "accountdesk.storefronts.admin",
    "accountdesk.storefronts.admin_pages",
    "accountdesk.signin.pages",
    "accountdesk.registration.pages",
    "accountdesk.resellers.routes",
    "accountdesk.resellers.pages",
    "accountdesk.resellers.order_routes",
    "accountdesk.resellers.order_pages",
    "accountdesk.signin.account_routes",
    "accountdesk.orders.account_routes",
    "accountdesk.registration.erp_routes",
    "accountdesk.signin.account_pages",
    "accountdesk.orders.account_pages",
    "accountdesk.registration.erp_pages",
    "accountdesk.carts.routes",
]


def _include_routers(app: FastAPI) -> None:
    import importlib

    for name in ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that capability has no routes of this kind (yet)
            raise
        app.include_router(module.router)


def outbox_handlers(settings: Settings, db: Database | None = None) -> Handlers:
    """What the outbox worker does with each kind of row. ERP pushes need the worker's database: without `db`
    they are not handled (their rows fail as having no handler)."""
    from accountdesk.mail import delivery

    handlers: Handlers = {"email": delivery.handler(settings)}
    if db is not None:
        from accountdesk.registration.erp import PUSH, PushHandler

        handlers[PUSH] = PushHandler(db, settings)
    return handlers


def create_app(settings: Settings | None = None, db: Database | None = None, *, run_worker: bool = False) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A request holding a database lock must always find a thread to finish in (sync dependencies, the
        # endpoint and the commit each take a thread in turn), so there are more threads than requests at once.
        to_thread.current_default_thread_limiter().total_tokens = settings.max_concurrent_requests + 16
        worker = None
        if run_worker:
            from accountdesk.core.outbox import Worker

            worker = Worker(db, outbox_handlers(settings, db), settings.outbox_poll_seconds,
                            settings.outbox_max_attempts)
            worker.start()
        yield
        if worker:
            worker.stop()

    app = FastAPI(title="accountdesk", version="0.1.0", lifespan=lifespan,
                  description="Customer accounts, storefront users, registration, approval, resellers and ERP.",
                  dependencies=[Depends(refuse_unstorable_text)], responses=ERROR_RESPONSES)
    app.state.db = db
    app.state.settings = settings
    app.state.rate_limits = RateLimits(db, settings.redis_url, settings.rate_limits_enabled)
    install_error_handlers(app)
    app.add_middleware(CsrfCookieMiddleware, secure=settings.cookie_secure)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.cookie_secure,
                       docs_paths={app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None})
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    app.include_router(headers.router)
    _include_routers(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        """200 when the database answers, 503 when it does not."""
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
            return error_response(503, "database_unreachable", "The database does not answer.")
        return JSONResponse({"status": "ok", "database": db.engine.dialect.name})

    return app
