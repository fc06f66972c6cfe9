"""Delivering rendered messages: SMTP when ACCOUNTDESK_SMTP_URL is set, else one .eml file per message."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from accountdesk.core.outbox import Handler, PermanentFailure
from accountdesk.core.settings import Settings
from accountdesk.mail.service import envelope_recipients, render


def send_smtp(url: str, message: EmailMessage, recipients: list[str], timeout: float = 10) -> None:
    parts = urlsplit(url)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
    client_cls = smtplib.SMTP_SSL if secure else smtplib.SMTP
    with client_cls(parts.hostname or "localhost", port, timeout=timeout) as client:
        if starttls:
            client.starttls(context=ssl.create_default_context())
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        try:
            refused = client.send_message(message, from_addr=parseaddr(message["From"])[1], to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"every recipient refused: {list(exc.recipients)}") from exc
        if refused:
            raise PermanentFailure(f"refused: {refused}")


def write_eml(folder: Path, message: EmailMessage) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = message["Message-ID"].strip("<>").split("@")[0]
    path = folder / f"{stem}.eml"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(message))
    tmp.replace(path)  # readers never see half a file
    return path


def handler(settings: Settings) -> Handler:
    """The outbox handler for e-mail with these settings: SMTP when configured, else the mail folder."""

    def deliver(payload: dict[str, Any]) -> None:
        try:
            message = render(payload, settings.mail_from)
        except Exception as exc:  # noqa: BLE001 — building depends on the row alone: it would fail on every retry
            raise PermanentFailure(f"the message cannot be built: {type(exc).__name__}: {exc}") from exc
        if settings.smtp_url:
            send_smtp(settings.smtp_url, message, envelope_recipients(payload))
        else:
            write_eml(Path(settings.mail_dir), message)

    return deliver
