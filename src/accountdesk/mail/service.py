"""E-mail: queue a message in the caller's transaction; render it in the recipient's language when the worker sends
it."""

from __future__ import annotations

import random
import re
import sys
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from accountdesk.core import i18n
from accountdesk.core.db import write_at_commit
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.outbox import OutboxMessage, enqueue

TEMPLATES = Path(__file__).parent / "templates" / "mail"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Header(BaseHeader):
    """A header that folds itself once: the headers every message shares (below) are written again and again."""

    def fold(self, *, policy: policy.Policy) -> str:
        folded = self.__dict__.get("_folded")  # (the policy's settings, the folded text): writing clones the policy
        if folded is None or folded[0] != policy.__dict__:
            folded = self.__dict__["_folded"] = (dict(policy.__dict__), super().fold(policy=policy))
        return folded[1]


# Headers whose value is the same in every message (the sender, the MIME parts' types and encodings, the languages):
# each (name, value) is parsed once and the header object shared, as it is never changed once made (a new value
# makes a new one). Subject, To, Date, Message-ID and the like differ per message and are parsed each time.
SHARED_HEADERS = frozenset({"from", "mime-version", "content-type", "content-transfer-encoding", "content-language"})


class _HeaderClasses(HeaderRegistry):
    """The standard registry, with each header's class made once: the stdlib makes a new class (`type(...)`) every
    time a header is set, checked or written, about a fifth of what building a message costs; and the headers every
    message has with the same value (`SHARED_HEADERS`) parsed once, which was about half of the rest."""

    def __init__(self) -> None:
        super().__init__(base_class=_Header)
        self._made: dict[str, type[BaseHeader]] = {}
        self._shared = lru_cache(maxsize=256)(self._parse)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        made = self._made.get(name.lower())
        if made is None:
            made = self._made[name.lower()] = super().__getitem__(name)
        return made

    def _parse(self, name: str, value: str) -> BaseHeader:
        return self[name](name, value)

    def __call__(self, name: str, value: str) -> BaseHeader:
        if name.lower() in SHARED_HEADERS and "boundary" not in value:  # a boundary is new in every message
            return self._shared(name, value)
        return self._parse(name, value)


POLICY = policy.default.clone(header_factory=_HeaderClasses())  # the same headers, folded the same way


def send(session: Session, template: str, to: list[str] | str, *, language: str = "en", context: dict[str, Any],
         cc: list[str] | None = None, bcc: list[str] | None = None, date_format: str | None = None) -> OutboxMessage:
    """Queue one message; it goes out only if the surrounding transaction commits. `language` and `date_format`
    are the recipient's: the message is written in them when it is sent."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not (TEMPLATES / f"{template}.j2").exists():
        raise ValueError(f"no mail template {template!r}")
    message = enqueue(session, "email", {"template": template,
                                         "language": language if language in LANGUAGES else "en", "to": recipients,
                                         "cc": cc or [], "bcc": bcc or [], "context": context,
                                         "date_format": date_format})
    write_at_commit(session, message)
    return message


@lru_cache
def _environments() -> tuple[Environment, Environment]:
    loader = FileSystemLoader(str(TEMPLATES))
    # auto_reload off: the templates ship with the code, so their files are not looked at again for every message
    text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True,
                       auto_reload=False)
    html = Environment(loader=loader, autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, auto_reload=False)
    for env in (text, html):
        i18n.install(env)
    return text, html


def _render_block(env: Environment, name: str, block: str, context: dict[str, Any]) -> str:
    template = env.get_template(name)
    return "".join(template.blocks[block](template.new_context(context))).strip()


def header_text(value: str) -> str:
    """The text as one header line: line breaks and other control characters become single spaces. A header cannot
    hold them, and a company name typed on two lines must not stop the mail (or add a header of its own)."""
    return " ".join(_CONTROL.sub(" ", value).split())


def render(payload: dict[str, Any], mail_from: str) -> EmailMessage:
    """Build the MIME message (plain text + HTML) from an outbox payload, in the recipient's language (one template
    per mail; its words come from the language's catalogue)."""
    language = i18n.supported(payload.get("language")) or i18n.DEFAULT_LANGUAGE
    with i18n.speaking(language, payload.get("date_format")):
        return _message(payload, f"{payload['template']}.j2", language, mail_from)


def _message(payload: dict[str, Any], name: str, language: str, mail_from: str) -> EmailMessage:
    text_env, html_env = _environments()
    context = payload["context"]
    message = EmailMessage(policy=POLICY)
    message["Subject"] = header_text(_render_block(text_env, name, "subject", context))
    message["From"] = mail_from
    # a message to Cc or Bcc addresses only (staff notices split by language) says so, as RFC 5322 allows
    message["To"] = header_text(", ".join(payload["to"])) or "undisclosed-recipients:;"
    if payload.get("cc"):
        message["Cc"] = header_text(", ".join(payload["cc"]))
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="accountdesk.local")
    text, html = _render_block(text_env, name, "text", context) + "\n", _render_block(html_env, name, "html", context)
    message.set_content(text)
    # the boundary chosen here, as the generator would (a random one that no part contains), so that writing the
    # message does not compile a pattern to look for it in the encoded parts and then set it
    message.make_alternative(boundary=_boundary(text, html))
    message.add_alternative(html, subtype="html")
    message["Content-Language"] = language  # after set_content, which drops Content-* headers
    return message


def _boundary(*parts: str) -> str:
    """A MIME boundary in the stdlib generator's form that none of the parts contains (then no encoded part does:
    quoted-printable and base64 encode its `=`)."""
    while True:
        boundary = f"{'=' * 15}{random.randrange(sys.maxsize):019d}=="
        if not any(boundary in part for part in parts):
            return boundary


def envelope_recipients(payload: dict[str, Any]) -> list[str]:
    return [*payload["to"], *payload.get("cc", []), *payload.get("bcc", [])]
