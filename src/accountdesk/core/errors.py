"""One error type carrying its HTTP status and a stable code, rendered as one JSON shape."""

from __future__ import annotations

from typing import Any

from accountdesk.core.i18n import _l, translate


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    message = _l("The request could not be processed.")

    def __init__(self, message: Any = None, *, code: str | None = None, fields: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message: Any = message or self.message  # str, or a lazy string translated when shown
        self.code = code or self.code
        self.fields = fields or {}
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": translate(self.message)}
        if self.fields:
            error["fields"] = {name: translate(text) for name, text in self.fields.items()}
        return {"error": error}


class BadRequest(AppError):
    status_code = 400


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    message = _l("Sign in first.")


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = _l("You are not allowed to do this.")


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = _l("Not found.")


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = _l("This conflicts with the current state.")


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_failed"
    message = _l("Some fields need attention.")


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"
    message = _l("Too many attempts. Try again later.")

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


def field_error(field: str, message: Any, code: str = "validation_failed") -> ValidationFailed:
    return ValidationFailed(message, code=code, fields={field: message})
