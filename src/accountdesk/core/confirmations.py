"""Confirmation before a console action that e-mails a customer or cannot be undone (approve, reject, deactivate,
send a reset link, erase, delete…): one mechanism for every such action. The action's POST does nothing until it
carries `confirmed=yes`; without it the page answers with the question instead (a step that needs no script), and
"Yes" sends the same action again, confirmed, with what the first form carried (a rejection's reason). A page may
also ask first, from a link (`?confirm=…`), and show the same question in place (resellers' three-dot menus).

The question is console/_confirm.html (an alertdialog with "Yes…" and a way back); console/confirm.html is the
page that shows it alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response

from accountdesk.core.i18n import _l
from accountdesk.core.pages import page

CONFIRMED = "confirmed"  # the form field "Yes" sends
CANCEL = _l("Cancel")


@dataclass(frozen=True)
class Confirmation:
    """A question before an action: its title, what will happen, the "Yes" button's words, where "Yes" posts to,
    and where the way back leads (with its words: "Cancel", or "Keep the order" where "Cancel" is the action)."""

    title: Any
    text: Any
    button: Any
    action_url: str
    back_url: str
    keep: Any = field(default_factory=lambda: CANCEL)
    danger: bool = False
    section: str = ""  # the page section that shows it in place (a record page's "users" or "orders")
    fields: Mapping[str, str] = field(default_factory=dict)  # what the first form carried, sent again with "Yes"


def confirmed(form: Mapping[str, str]) -> bool:
    """Whether the form is a "Yes" to its confirmation."""
    return form.get(CONFIRMED) == "yes"


def confirmation_page(request: Request, question: Confirmation, context: dict[str, Any] | None = None) -> Response:
    """The question alone on a console page (`context`: the layout's, e.g. {"staff": principal})."""
    return page(request, "console/confirm.html", {**(context or {}), "confirm": question})
