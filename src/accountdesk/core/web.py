"""HTTP plumbing shared by every domain: the request's database session, templates, errors as one JSON shape."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from accountdesk.core import history, i18n, validation, wording
from accountdesk.core.db import Database
from accountdesk.core.errors import AppError, Conflict, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.settings import Settings
from accountdesk.core.validation import may_span_lines, text_problem

log = logging.getLogger("accountdesk.web")
PACKAGE = Path(__file__).resolve().parent.parent
Model = TypeVar("Model", bound=BaseModel)
Answer = TypeVar("Answer")


def get_db(request: Request) -> Database:
    return request.app.state.db


def client_address(request: Request) -> str:
    """The client's address, the key of per-address limits. It is the peer's address unless the peer is a proxy
    named in ACCOUNTDESK_TRUSTED_PROXIES; then the server has already taken it from X-Forwarded-For (see
    `proxy_options`)."""
    return request.client.host if request.client else "unknown"


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for forwarded headers: believed only from the trusted proxies, and not at all without any
    (uvicorn itself would believe 127.0.0.1)."""
    trusted = settings.trusted_proxy_list
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


ENDED = "accountdesk_ended"  # session.info: the endpoint's own thread already ended the transaction (`end_now`)


async def _session(request: Request) -> AsyncIterator[Session]:
    """The request's one transaction: committed when the endpoint returns, rolled back when it raises. Services
    only flush. Opening a session costs no I/O (the connection comes with the first statement), so it opens on
    the event loop; the commit runs in a thread of its own limiter, so that it never waits for the pool's threads
    while the transaction holds locks that the pool's other requests are waiting for. An endpoint whose answer
    needs nothing more from the session commits in its own thread instead (`end_now`): one trip to the thread pool
    fewer."""
    db: Database = request.app.state.db
    session = db.sessionmaker()
    try:
        yield session
    except BaseException:
        if not session.info.get(ENDED):
            await to_thread.run_sync(_end, session, False, limiter=CapacityLimiter(1), abandon_on_cancel=False)
        raise
    if not session.info.get(ENDED):
        await to_thread.run_sync(_end, session, True, limiter=CapacityLimiter(1), abandon_on_cancel=False)


def end_now(session: Session) -> None:
    """Commit the request's transaction (then run its `after_commit` actions) in the calling worker thread, before
    the answer is sent, as `_session` would have done after the endpoint: for an endpoint that has nothing left to
    do in the session once it returns (core.idempotency.ApiRoute). A failed commit raises from here, so it still
    becomes the error answer."""
    session.info[ENDED] = True
    _end(session, True)


def _end(session: Session, commit: bool) -> None:
    with session:
        if not commit:
            session.rollback()
            return
        try:
            session.commit()
        except BaseException:
            session.rollback()
            raise
    for action in session.info.pop("after_commit", ()):
        action()


# scope="function": the commit runs before the response is sent, so a failed commit becomes an error response.
DbSession = Annotated[Session, Depends(_session, scope="function")]


def template_dirs() -> list[Path]:
    return sorted(PACKAGE.glob("*/templates"))


templates = Jinja2Templates(env=Environment(loader=FileSystemLoader([str(p) for p in template_dirs()]),
                                           autoescape=select_autoescape(default=True)))
i18n.install(templates.env)
# addresses: one source of countries and their subdivisions for every form (console/forms.html country_and_region),
# and their names, not codes, where a page shows an address
templates.env.filters.update(country=i18n.country_name, region=validation.subdivision_name)
templates.env.globals.update(country_options=validation.countries, subdivision_options=validation.subdivision_options,
                             region_required=validation.region_required)
history.install(templates.env)


def media_type(content_type: str) -> str:
    """A Content-Type header's media type alone: `application/json; charset=utf-8` is `application/json`."""
    return content_type.partition(";")[0].strip().lower()


def _json_texts(body: Any) -> Iterator[tuple[str, str]]:
    """(dotted field name, text) for every key and string of a decoded JSON body, at any depth (no recursion)."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        name, value = stack.pop()
        if isinstance(value, str):
            yield name or "body", value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield name or "body", key
                stack.append((f"{name}.{key}" if name else key, item))
        elif isinstance(value, list):
            stack.extend((f"{name}.{i}" if name else str(i), item) for i, item in enumerate(value))


async def _body_texts(request: Request) -> list[tuple[str, str]]:
    """The texts of a form or JSON body, as the endpoint will read them."""
    content_type = media_type(request.headers.get("content-type", ""))
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return [(name, name) for name in form] + [(n, v) for n, v in form.multi_items() if isinstance(v, str)]
    is_json = not content_type or content_type.startswith("application/") and content_type.endswith("json")
    if is_json and await request.body():
        try:
            return list(_json_texts(await request.json()))
        except ValueError:  # not JSON: the endpoint refuses it, or does not read it
            pass
    return []


def _unstorable(request: Request, body_texts: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> dict[str, str]:
    """What is wrong with each field of the request (path, query string, body) whose text cannot be stored."""
    query = request.query_params.multi_items()
    single_line = [*request.path_params.items(), *((name, name) for name, _ in query), *query]
    problems: dict[str, str] = {}
    for name, text in single_line:
        if problem := text_problem(text):
            problems.setdefault(name, problem)
    for name, text in body_texts:
        if problem := text_problem(text, multiline=may_span_lines(name)):
            problems.setdefault(name, problem)
    return problems


async def refuse_unstorable_text(request: Request) -> None:
    """App-wide dependency: text that no database or mail header takes (NUL and the other control characters, lone
    surrogates; line breaks outside the few multi-line fields) is refused before any endpoint sees it, wherever it
    is: path, query string, form or JSON body. 422 `invalid_text` naming the fields; a readable page on pages."""
    problems = _unstorable(request, await _body_texts(request))
    if problems:
        first, problem = next(iter(problems.items()))
        raise ValidationFailed(_l("Check %(field)s: %(problem)s", field=first, problem=problem), code="invalid_text",
                               fields=problems)


# Express routes (app.ExpressLane) ---------------------------------------------------------------------------------

ONWARD = "accountdesk.onward"  # scope: the app behind the express lane, which `Onward` hands a request to


class Onward(Response):
    """An express route's answer to a request it leaves to the app: the app's own route then answers it as if there
    were no express route (its refusals in its words), with the body the express route has read."""

    def __init__(self, request: Request) -> None:
        self.request = request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self.request.body()
        except ClientDisconnect:  # the app meets the client's leaving as it would have
            await scope[ONWARD](scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await scope[ONWARD](scope, replay, send)


async def express_json(request: Request, model: type[Model]) -> Model | None:
    """The JSON body of an express route's request as `model`; None for anything out of the ordinary (another
    content type, a body that is not JSON or not valid for `model`, text that cannot be stored anywhere in the
    request), which the express route then leaves to the app's own route (`Onward`): it refuses it as it always has.
    An ordinary body is what that route would have taken: FastAPI parses `application/json` with `json.loads` and
    validates the decoded value with the model, after the app-wide `refuse_unstorable_text`."""
    if media_type(request.headers.get("content-type", "")) != "application/json":
        return None
    try:
        decoded = json.loads(await request.body())
        body = model.model_validate(decoded)
    except Exception:  # noqa: BLE001 — not JSON, not valid, too deep...: whatever the app's route makes of it
        return None
    return None if _unstorable(request, _json_texts(decoded)) else body


# Worker threads of the express routes, as many as the OpenID Connect grants have: a plain executor takes ~0.1-0.2 ms
# less CPU a trip than anyio's (a capacity limiter and a queue.Queue). A trip holds its transaction only while it
# runs, so a request waiting for a thread holds nothing that another one waits for.
EXPRESS_THREADS = ThreadPoolExecutor(20, thread_name_prefix="accountdesk-express")


async def in_one_transaction(request: Request, work: Callable[[Session], Answer]) -> Answer:
    """`work` in the request's one transaction, as `DbSession` gives it to a FastAPI route (committed, then its
    `after_commit` actions, when `work` returns; rolled back when it raises), in one trip to a worker thread."""
    db: Database = request.app.state.db

    def run() -> Answer:
        with db.transaction() as session:
            return work(session)

    return await asyncio.get_running_loop().run_in_executor(EXPRESS_THREADS, run)


def headers_only() -> Response:
    """What a FastAPI endpoint gets as its `response: Response` parameter: headers (cookies) for the answer, which
    `answer_json` adds."""
    response = Response()
    del response.headers["content-length"]
    return response


def answer_json(answer: Any, status_code: int, headers_from: Response | None = None) -> JSONResponse:
    """An express route's answer as its API route renders it (`response_model=None`: plain JSON), with the headers an
    endpoint set on its `headers_only` response."""
    response = JSONResponse(answer, status_code=status_code)
    if headers_from is not None:
        response.headers.raw.extend(headers_from.headers.raw)
    return response


# Constraint name -> (field, message): the race-safe way to report a duplicate.
UNIQUE_FIELDS: dict[str, tuple[str, Any]] = {
    "uq_accounts_number": ("number", _l("This account number is already taken.")),
    "uq_accounts_erp_code": ("erp_code", _l("Another account already has this ERP code.")),
    "uq_contacts_account_id_storefront_id_email": ("email", _l("This account already has a contact with this e-mail "
                                                            "on this storefront.")),
    "uq_staff_users_email": ("email", _l("A staff user with this e-mail already exists.")),
    "uq_storefronts_slug": ("slug", _l("This storefront address is already taken.")),
    "uq_custom_attribute_definitions_key": ("key", _l("An attribute with this key already exists.")),
    "uq_invoices_account_id_number": ("number", _l("This invoice number is already recorded for the account.")),
    "uq_cart_lines_cart_id_sku": ("sku", _l("This product is already in the cart.")),
    "uq_favourites_contact_id_sku": ("sku", _l("This product is already a favourite.")),
    "uq_saved_payment_methods_account_id_provider_provider_token_id": (
        "provider_token_id", _l("This payment method is already saved for the account.")),
}


def violated_constraint(exc: IntegrityError) -> str:
    """The unique constraint's name; SQLite lists the columns instead, which our naming convention turns back."""
    text = str(exc.orig)
    if "UNIQUE constraint failed:" in text:
        columns = [c.strip() for c in text.split("UNIQUE constraint failed:", 1)[1].split(",")]
        table = columns[0].split(".")[0]
        return f"uq_{table}_" + "_".join(c.split(".")[-1] for c in columns)
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return constraint or ""


def conflict_from_integrity_error(exc: IntegrityError) -> Conflict:
    field_message = UNIQUE_FIELDS.get(violated_constraint(exc))
    if field_message:
        field, message = field_message
        return Conflict(message, code="duplicate", fields={field: message})
    return Conflict(_l("This change conflicts with existing data."), code="conflict")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable: validation_failed, invalid_text, not_authenticated, "
                                  "forbidden, not_found, conflict, rate_limited, ...")
    message: str = Field(description="For people")
    fields: dict[str, str] | None = Field(None, description="A message per field at fault (dotted names)")


class ErrorBody(BaseModel):
    """Every refusal and failure of the API answers in this one shape."""

    error: ErrorDetail


# Documented on every operation (FastAPI then leaves out its own 422 shape, which this API never answers).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Refused, with a stable code: 400 bad input, 401 sign in first, 403 "
                                                 "not allowed, 404 not found, 409 conflict, 422 invalid fields, "
                                                 "429 too many attempts (Retry-After)"},
    503: {"model": ErrorBody, "description": "The database or the ERP is busy or unreachable: try again after "
                                              "Retry-After"},
}


def error_response(status: int, code: str, message: Any, fields: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None, language: str = i18n.DEFAULT_LANGUAGE) -> JSONResponse:
    """The one error shape; `message` and the field messages in `language` (lazy strings and catalogue msgids are
    translated, the code never)."""
    with i18n.speaking(language):
        error: dict[str, Any] = {"code": code, "message": i18n.translate(message)}
        if fields:
            error["fields"] = {name: i18n.translate(text) for name, text in fields.items()}
    return JSONResponse({"error": error}, status_code=status, headers={**(headers or {}), "Content-Language": language})


def refusal(request: Request, exc: AppError) -> JSONResponse:
    """An AppError as the API's answer, in the request's language."""
    return error_response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers,
                          language=i18n.request_language(request))


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


# Starlette's own refusals (no route, a method the route does not take) in our words
HTTP_MESSAGES: dict[int, Any] = {404: _l("Not found."), 405: _l("This address does not take this method."),
                                 401: _l("Sign in first."), 403: _l("You are not allowed to do this.")}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        return refusal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            return error_response(400, "invalid_json", _l("The request body is not valid JSON."),
                                  language=i18n.request_language(request))
        fields: dict[str, Any] = {}
        for err in errors:
            fields.setdefault(_field_name(tuple(err.get("loc", ()))), wording.problem(err))
        return error_response(422, wording.answer_code(errors), _l("Some fields need attention."), fields,
                              language=i18n.request_language(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated", 403: "forbidden"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"),
                              HTTP_MESSAGES.get(exc.status_code, str(exc.detail)),
                              headers=getattr(exc, "headers", None), language=i18n.request_language(request))

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        conflict = conflict_from_integrity_error(exc)
        return error_response(409, conflict.code, conflict.message, conflict.fields,
                              language=i18n.request_language(request))

    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return error_response(503, "database_unavailable", _l("The database is busy; try again."),
                              headers={"Retry-After": "1"}, language=i18n.request_language(request))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", _l("Something went wrong on our side."),
                              language=i18n.request_language(request))
