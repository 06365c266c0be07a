"""Mail over SMTP: a real server that needs STARTTLS and a password, read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcare.adapters.mail import BadSmtpUrl, SmtpMailer
from socialcare.bot.announcements.ports import Mail, MailFailed, MailRefused
from tests.mailserver import PASSWORD, MailServer

MAIL = Mail(
    to="shops@example.com", subject="📣 Announcement #3: Almaty outage", heading="Announcement #3",
    body="The outage in Almaty is fixed.\n\n<b>Answer</b> with the standard apology & a smile.",
    details=("From Saule, 10:00", "In force until 18:00"), footer="Sent by socialcare",
    language="en", key="announcement-3-abc", follows=None,
)


def _mailer(server: MailServer, **kwargs: object) -> SmtpMailer:
    return SmtpMailer(server.url, "care@example.com", ca_file=str(server.ca_file),
                      **kwargs)  # type: ignore[arg-type]


async def test_a_mail_goes_over_starttls_with_auth_with_a_plain_and_an_escaped_html_body(
    tmp_path: Path,
) -> None:
    with MailServer(tmp_path) as server:
        await _mailer(server).send(MAIL)
        await _mailer(server).send(Mail(**{**MAIL.__dict__, "key": "announcement-3-r2-abc",
                                          "follows": "announcement-3-abc",
                                          "subject": "Correction to #3"}))

    first, correction = server.messages_to("shops@example.com")
    assert server.sessions() == [(True, True), (True, True)]
    assert first["From"] == "care@example.com" and first["To"] == "shops@example.com"
    assert first["Subject"] == "📣 Announcement #3: Almaty outage"
    assert first["Message-ID"] == "<announcement-3-abc@example.com>"
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["Content-Language"] == "en"
    plain = first.get_body(("plain",))
    html = first.get_body(("html",))
    assert plain is not None and html is not None
    assert "<b>Answer</b> with the standard apology & a smile." in plain.get_content()
    assert "In force until 18:00" in plain.get_content()
    assert "&lt;b&gt;Answer&lt;/b&gt; with the standard apology &amp; a smile." in \
        html.get_content()
    assert "<b>Answer</b>" not in html.get_content()
    assert correction["In-Reply-To"] == "<announcement-3-abc@example.com>"
    assert correction["References"] == "<announcement-3-abc@example.com>"


async def test_a_recipient_put_off_is_a_failure_to_retry_and_a_bad_password_too(
    tmp_path: Path,
) -> None:
    with MailServer(tmp_path) as server:
        server.refuse("shops@example.com")
        with pytest.raises(MailFailed) as put_off:
            await _mailer(server).send(MAIL)
        # (aiosmtpd answers a wrong password by waiting: a short timeout keeps this quick.)
        wrong = SmtpMailer(server.url.replace(PASSWORD.replace("$", "%24"), "guess"),
                           "care@example.com", ca_file=str(server.ca_file), timeout=1.0)
        with pytest.raises(MailFailed) as refused_login:
            await wrong.send(MAIL)

    assert not server.messages_to("shops@example.com")
    # 4xx: tried again later; a wrong password may be fixed in the environment meanwhile.
    assert not isinstance(put_off.value, MailRefused)
    assert not isinstance(refused_login.value, MailRefused)


async def test_a_server_whose_certificate_is_not_trusted_gets_nothing(tmp_path: Path) -> None:
    with MailServer(tmp_path) as server:
        untrusting = SmtpMailer(server.url, "care@example.com")
        with pytest.raises(MailFailed):
            await untrusting.send(MAIL)

    assert not server.messages_to("shops@example.com")


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "mail.example.com:587",
                                 "smtp://mail.example.com:99999"])
def test_an_smtp_url_that_is_not_one_is_refused(url: str) -> None:
    with pytest.raises(BadSmtpUrl):
        SmtpMailer(url, "care@example.com")
