"""Local receivers of escalation notices for tests: an SMTP server (aiosmtpd) and a JSON webhook.

Both run in the test process on 127.0.0.1 and record what arrives, so worker subprocesses can send
to them too. `FakeSmtp.refuse` answers RCPT for an address with a given SMTP reply; `FakeHook`
answers with queued statuses and can hold a request (`hold`) so a test can kill the sender mid-send.
"""

from __future__ import annotations

import email
import json
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller

from tests.connector.fakes.local_http import LocalHttpServer, free_port


class FakeSmtp:
    """aiosmtpd on 127.0.0.1: every message accepted (a parsed email.message.Message each)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply to its RCPT, e.g. "550 5.1.1 no such user"
        fake = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in fake.refuse:
                    return fake.refuse[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                fake.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}"

    def start(self) -> FakeSmtp:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in str(m["To"])]


@dataclass
class Hook:
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class FakeHook(LocalHttpServer):
    """A JSON webhook receiver: records each POST, answers 200 unless `answers` holds a status."""

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self.answers: list[int] = []  # statuses for the next requests, in order
        self.hold = threading.Event()  # set: requests are answered; clear: they wait (at most 60 s)
        self.hold.set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.received.append(Hook({k: v for k, v in self.headers.items()}, raw, time.time()))
                fake.hold.wait(60)
                status = fake.answers.pop(0) if fake.answers else 200
                body = b"ok"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender is gone (killed mid-send)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/sla"

    def stop(self) -> None:
        self.hold.set()  # a held request would keep shutdown() waiting
        super().stop()
