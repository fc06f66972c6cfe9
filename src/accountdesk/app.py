"""The application factory: one FastAPI app serving the JSON API, the console and the storefront pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.datastructures import State
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from accountdesk.core import headers, security
from accountdesk.core.db import Database
from accountdesk.core.forms import CsrfCookieMiddleware
from accountdesk.core.headers import SecurityHeadersMiddleware
from accountdesk.core.outbox import Handlers
from accountdesk.core.ratelimit import RateLimits
from accountdesk.core.settings import Settings, get_settings
from accountdesk.core.web import (
    ERROR_RESPONSES,
    ONWARD,
    PACKAGE,
    error_response,
    install_error_handlers,
    refuse_unstorable_text,
)
from accountdesk.webhooks.openapi import document_webhooks

FAVICON = "favicon.svg"

# FastAPI tries routes one by one, in this order: the busiest first. The OpenID Connect protocol endpoints (the token
# endpoint: storefront backends fetch their credentials there; matching it after the 250 routes of the others cost
# more than the grant itself), then the storefront API's sign-in and registration. No route before them matches any
# of their paths, so the order changes no answer. "module:name" includes that router of the module.
ROUTERS = [
    "accountdesk.oidc.routes:protocol",
    "accountdesk.signin.routes",
    "accountdesk.registration.routes",
    "accountdesk.staff.routes",
    "accountdesk.staff.pages",
    "accountdesk.staff_admin.routes",
    "accountdesk.staff_admin.pages",
    "accountdesk.staff_admin.account_pages",
    "accountdesk.accounts.routes",
    "accountdesk.contacts.new_customer_pages",  # /console/accounts/new: before the record page's /{account_id}
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
    "accountdesk.orders.record_pages",
    "accountdesk.registration.erp_pages",
    "accountdesk.carts.routes",
    "accountdesk.carts.pages",
    "accountdesk.imports.pages",
    "accountdesk.privacy.routes",
    "accountdesk.privacy.pages",
    "accountdesk.domains.routes",
    "accountdesk.domains.pages",
    "accountdesk.oidc.routes",
    "accountdesk.oidc.pages",
    "accountdesk.webhook_admin.routes",
    "accountdesk.webhook_admin.pages",
]


# Plain routes also served ahead of the middleware and the routers (see ExpressLane), each module's `express` list.
EXPRESS = ["accountdesk.oidc.routes", "accountdesk.signin.routes", "accountdesk.registration.routes"]


def _include_routers(app: AccountDesk) -> None:
    import importlib

    for entry in ROUTERS:
        name, _, attribute = entry.partition(":")
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that capability has no routes of this kind (yet)
            raise
        app.include_router(getattr(module, attribute or "router"))
    app.express = tuple(route for name in EXPRESS for route in importlib.import_module(name).express)


def outbox_handlers(settings: Settings, db: Database | None = None) -> Handlers:
    """What the outbox worker does with each kind of row. ERP pushes and webhooks need the worker's database:
    without `db` they are not handled (their rows fail as having no handler)."""
    import accountdesk.models  # noqa: F401 — every table, so that foreign keys between packages resolve in a worker
    from accountdesk.mail import delivery

    handlers: Handlers = {"email": delivery.handler(settings)}
    if db is not None:
        from accountdesk.registration.erp import PUSH, PushHandler
        from accountdesk.webhooks import events
        from accountdesk.webhooks.delivery import DeliveryHandler

        handlers[PUSH] = PushHandler(db, settings)
        from accountdesk.oidc import logout

        handlers[logout.KIND] = logout.LogoutHandler(db, settings)
        handlers[events.KIND] = DeliveryHandler(db, settings)
    return handlers


class ExpressLane:
    """The few hottest plain routes, taken before the middleware and the routers: going through FastAPI's and the
    app's middleware and the nested routers costs ~150 µs of CPU a request, more than a client-credentials grant's
    own statements. They keep the app's error and exception handlers (as Starlette runs them: 500s by the outer
    one, the others around the endpoint) and its security headers (ExpressLane sits inside them); they need none of
    the rest (no CSRF cookie: they serve no page, no dependencies). A route's other methods, every other request, and
    the requests an express route hands on (core.web.Onward: to its twin among the app's routes) go through the app
    as usual."""

    def __init__(self, app: FastAPI, routes: tuple[Route, ...], rest: ASGIApp) -> None:
        errors = {key: handler for key, handler in app.exception_handlers.items() if key not in (500, Exception)}
        unexpected = app.exception_handlers.get(Exception) or app.exception_handlers.get(500)
        self.lanes = [(route, ServerErrorMiddleware(ExceptionMiddleware(route.handle, errors, debug=app.debug),
                                                    handler=unexpected, debug=app.debug)) for route in routes]
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route, lane in self.lanes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope[ONWARD] = self.rest
                    await lane(scope, receive, send)
                    return
        await self.rest(scope, receive, send)


class AccountDesk(FastAPI):
    """The app whose security headers wrap everything it answers: also the 500 of an unexpected error, which
    Starlette's outermost middleware (ServerErrorMiddleware) sends past every middleware added to the app."""

    express: tuple[Route, ...] = ()

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(ExpressLane(self, self.express, super().build_middleware_stack()),
                                         hsts=self.state.settings.cookie_secure,
                                         docs_paths={self.docs_url, self.redoc_url,
                                                     self.swagger_ui_oauth2_redirect_url} - {None})


def initial_state(settings: Settings, db: Database) -> State:
    """What requests find on `app.state` when the app starts: the database, the settings and the rate limits."""
    return State({"db": db, "settings": settings,
                  "rate_limits": RateLimits(db, settings.redis_url, settings.rate_limits_enabled)})


def create_app(settings: Settings | None = None, db: Database | None = None, *, run_worker: bool = False) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url)
    security.bind(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A request holding a database lock must always find a thread to finish in (sync dependencies, the
        # endpoint and the commit each take a thread in turn), so there are more threads than requests at once.
        to_thread.current_default_thread_limiter().total_tokens = settings.max_concurrent_requests + 16
        worker = None
        if run_worker:
            from accountdesk.core.outbox import Worker

            worker = Worker(db, outbox_handlers(settings, db), settings.outbox_poll_seconds,
                            settings.outbox_max_attempts, chores=[app.state.rate_limits.forget_expired])
            worker.start()
        yield
        if worker:
            worker.stop()

    app = AccountDesk(title="accountdesk", version="0.1.0", lifespan=lifespan,
                  description="Customer accounts, storefront users, registration, approval, resellers and ERP.",
                  dependencies=[Depends(refuse_unstorable_text)], responses=ERROR_RESPONSES)
    app.state = initial_state(settings, db)
    install_error_handlers(app)
    app.add_middleware(CsrfCookieMiddleware, secure=settings.cookie_secure)
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")
    app.include_router(headers.router)
    _include_routers(app)
    document_webhooks(app)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """The icon a browser asks for by itself (the pages link the same one)."""
        return FileResponse(PACKAGE / "static" / FAVICON, media_type="image/svg+xml")

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
