"""A real HTTP receiver on loopback for webhook tests and the bench: it records every request and answers as told
(ok, down with a status, slow, or a redirect)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    connection: int = 0  # the sender's port: one per connection

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)

    def verify(self, secret: str) -> dict[str, Any]:
        """The payload, checked with the Standard Webhooks reference verifier (raises when the signature is bad)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    url: str
    status: int = 204
    delay: float = 0.0
    redirect_to: str | None = None
    answer: bytes = b""  # the answer's body, sent `answer_delay` seconds after its headers
    answer_delay: float = 0.0
    received: list[Received] = field(default_factory=list)  # answered 2xx
    refused: list[Received] = field(default_factory=list)  # answered otherwise
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers

        def do_POST(self) -> None:  # noqa: N802 — http.server's name
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[1])
            if receiver.delay:
                time.sleep(receiver.delay)
            status = 302 if receiver.redirect_to and self.path != receiver.redirect_to else receiver.status
            with receiver.lock:
                (receiver.received if 200 <= status < 300 else receiver.refused).append(got)
            self.send_response(status)
            if status == 302:
                self.send_header("location", receiver.redirect_to or "/")
            self.send_header("content-length", str(len(receiver.answer)))
            self.end_headers()
            if receiver.answer:
                self.wfile.flush()
                time.sleep(receiver.answer_delay)
                self.wfile.write(receiver.answer)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    """A receiver serving until the block ends (a port of 0 takes a free one)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(Receiver("")))
    server.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
