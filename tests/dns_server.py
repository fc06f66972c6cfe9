"""A real DNS server on a loopback UDP port for the domain checks: it speaks the protocol through dnspython's own
message handling (dns.message, dns.query over UDP) and answers TXT queries from `records`; any other name is
NXDOMAIN."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest


class DnsServer:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def publish(self, domain: str, text: str) -> None:
        self.records.setdefault(domain, []).append(text)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            texts = [f'"{text}"' for text in self.records[name]]
            response.answer.append(dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN,
                                                            dns.rdatatype.TXT, texts))
        return response

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                query, _, client = dns.query.receive_udp(self.sock, expiration=time.time() + 0.2)
            except dns.exception.Timeout:
                continue
            except OSError:
                return
            dns.query.send_udp(self.sock, self._answer(query), client)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    yield server
    server.stop()
