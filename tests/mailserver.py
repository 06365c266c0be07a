"""A real SMTP server for tests (aiosmtpd): STARTTLS with a certificate of a test CA
(trustme), AUTH required over TLS, every accepted message kept and readable back.

    with MailServer(tmp_path) as mail:
        settings = {"smtp_url": mail.url, "smtp_from": "care@example.com",
                    "smtp_ca_file": mail.ca_file}
        ...
        [message] = mail.messages_to("shops@example.com")

`refuse(address)` makes the server answer a recipient with a temporary failure (451)
until `accept(address)`.
"""

from __future__ import annotations

import socket
import ssl
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "socialcare", "mail-pa$$word"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self._server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address.casefold() in self._server.refused:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._server.lock:
            self._server.received.append((list(envelope.rcpt_tos), envelope.mail_from,
                                          message, bool(session.ssl), session.authenticated))
        return "250 Message accepted"


class MailServer:
    """An SMTP server on 127.0.0.1 that needs STARTTLS and a password."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.refused: set[str] = set()
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], str, EmailMessage, bool, bool]] = []
        ca = trustme.CA()
        certificate = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = directory / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, tls_context=context,
            require_starttls=True, auth_required=True, auth_require_tls=True,
            authenticator=self._authenticate)

    @staticmethod
    def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
            and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok)

    @property
    def url(self) -> str:
        """Return SMTP_URL for this server (STARTTLS on its port)."""
        return f"smtp://{USER}:{PASSWORD.replace('$', '%24')}@127.0.0.1:{self.port}"

    def refuse(self, address: str) -> None:
        self.refused.add(address.casefold())

    def accept(self, address: str) -> None:
        self.refused.discard(address.casefold())

    def messages_to(self, address: str) -> list[EmailMessage]:
        """Return what the server accepted for an address, oldest first."""
        with self.lock:
            return [m for rcpt, _, m, _, _ in self.received
                    if address.casefold() in (r.casefold() for r in rcpt)]

    def sessions(self) -> list[tuple[bool, bool]]:
        """Return (over TLS, authenticated) of every accepted message's session."""
        with self.lock:
            return [(tls, auth) for _, _, _, tls, auth in self.received]

    def __enter__(self) -> MailServer:
        self._controller.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._controller.stop()
