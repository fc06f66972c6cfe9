"""What a request answers when the ERP cannot be asked: every caller of the gateway raises this one error."""

from __future__ import annotations

from accountdesk.core.errors import AppError
from accountdesk.core.i18n import _l

ERP_DOWN = _l("We cannot check your account right now. Please try again in a few minutes.")


class ErpUnreachableError(AppError):
    """The ERP could not be asked, so the action cannot go ahead now."""

    status_code = 503
    code = "erp_unavailable"
    message = ERP_DOWN

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": "60"})
