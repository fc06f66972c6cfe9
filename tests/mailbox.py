"""Reading delivered messages: from the mail folder (.eml files) or from a real SMTP server on loopback."""

from __future__ import annotations

import email
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller

from accountdesk.app import outbox_handlers
from accountdesk.core.db import Database
from accountdesk.core.outbox import deliver_due
from accountdesk.core.settings import get_settings

LINK = re.compile(r"https?://[^\s\"'<>]+")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def links(message: EmailMessage) -> list[str]:
    return LINK.findall(text_of(message))


def read_folder(folder: Path) -> list[EmailMessage]:
    files = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=default) for p in files]  # type: ignore[misc]


def deliver_and_read(db: Database, folder: Path) -> list[EmailMessage]:
    """Run the outbox once (the worker's own code) and read what it wrote to the mail folder."""
    settings = get_settings().model_copy(update={"mail_dir": folder, "smtp_url": None})
    deliver_due(db, outbox_handlers(settings, db))
    return read_folder(folder)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) on a loopback port that keeps what it receives."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 — aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=default)
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received if address in r.envelope_to]


def start_smtp(port: int) -> tuple[Controller, SmtpSink]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink
