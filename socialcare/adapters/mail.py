"""E-mail over SMTP (aiosmtplib): announcements to mailboxes, as plain text and HTML.

`SMTP_URL` says where: `smtps://user:password@mail.example.com:465` (TLS from the
start) or `smtp://user:password@mail.example.com:587` (STARTTLS, which is required:
a server that does not offer it gets nothing). `SMTP_CA_FILE` adds a CA bundle for a
relay with a private certificate.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from html import escape
from urllib.parse import unquote, urlsplit

import aiosmtplib

from socialcare.bot.announcements.ports import Mail, MailFailed, MailRefused

TIMEOUT = 15.0


class BadSmtpUrl(ValueError):
    """SMTP_URL is not an smtp:// or smtps:// URL with a host."""


def mail_message(mail: Mail, *, sender: str) -> EmailMessage:
    """Return the message for a mail: a plain-text part and an HTML part, every piece
    of text escaped in the HTML, threaded under the first mail when it follows one."""
    domain = sender.rpartition("@")[2] or "socialcare"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{mail.key}@{domain}>"
    if mail.follows:
        message["In-Reply-To"] = f"<{mail.follows}@{domain}>"
        message["References"] = f"<{mail.follows}@{domain}>"
    # An announcement is not a conversation: no out-of-office replies, please.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content("\n".join([mail.heading, "", mail.body, "", *mail.details, "",
                                   mail.footer]) + "\n")
    paragraphs = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>"
                         for p in mail.body.split("\n\n"))
    details = "".join(f"<li>{escape(d)}</li>" for d in mail.details)
    message.add_alternative(
        f'<!doctype html><html lang="{escape(mail.language)}"><head><meta charset="utf-8">'
        f"<title>{escape(mail.subject)}</title></head><body>"
        f"<h2>{escape(mail.heading)}</h2>{paragraphs}<ul>{details}</ul>"
        f"<p><small>{escape(mail.footer)}</small></p></body></html>\n",
        subtype="html")
    # After the parts: setting content drops the Content-* headers set before.
    message["Content-Language"] = mail.language
    return message


class SmtpMailer:
    """Send mail through one SMTP server, always over TLS."""

    def __init__(self, url: str, sender: str, *, ca_file: str | None = None,
                 timeout: float = TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise BadSmtpUrl("SMTP_URL: use smtps://user:password@host:465 or "
                             "smtp://user:password@host:587 (STARTTLS)")
        self._implicit_tls = parts.scheme == "smtps"
        self._host = parts.hostname
        try:
            port = parts.port
        except ValueError:
            raise BadSmtpUrl("SMTP_URL: the port is not a number from 1 to 65535") from None
        self._port = port or (465 if self._implicit_tls else 587)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender
        self._ca_file = ca_file
        self._timeout = timeout

    @property
    def sender(self) -> str:
        """Return the From address."""
        return self._sender

    async def send(self, mail: Mail) -> None:
        """Send one mail, or raise MailFailed (MailRefused when the server refused it
        for good)."""
        message = mail_message(mail, sender=self._sender)
        try:
            await aiosmtplib.send(
                message, hostname=self._host, port=self._port, username=self._username,
                password=self._password, use_tls=self._implicit_tls,
                start_tls=None if self._implicit_tls else True, cert_bundle=self._ca_file,
                timeout=self._timeout)
        except aiosmtplib.SMTPRecipientsRefused as error:
            # 5xx: refused for good; 4xx ("try again later"): retried.
            final = all(500 <= r.code < 600 for r in error.recipients)
            raise (MailRefused if final else MailFailed)(
                f"{self._host} refused it: {_reason(error)}") from error
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600 and not isinstance(
                    error, aiosmtplib.SMTPAuthenticationError):
                raise MailRefused(f"{self._host} refused it: {error.code} {error.message}") \
                    from error
            raise MailFailed(f"{self._host}: {error.code} {error.message}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise MailFailed(f"{self._host}:{self._port}: {type(error).__name__}: {error}") \
                from error


def _reason(error: Exception) -> str:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(f"{r.code} {r.message}" for r in error.recipients)
    return str(error)
