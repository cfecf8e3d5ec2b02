"""Sending email over SMTP (reports, notifications, invitations)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from ioi.config import Settings


class MailError(RuntimeError):
    """The SMTP server could not be reached or refused the message."""


def build_message(
    settings: Settings,
    to: str | list[str],
    subject: str,
    text: str,
    html: str | None = None,
    cc: list[str] | None = None,
    sender_name: str | None = None,
) -> EmailMessage:
    """A message from IR_EMAIL (as `sender_name`), plain text with an optional HTML alternative."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name or f"{settings.INSTITUTION_ABBREVIATION} Repository", settings.IR_EMAIL))
    message["To"] = ", ".join([to] if isinstance(to, str) else to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.IR_EMAIL.rsplit("@", 1)[-1])
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send(settings: Settings, message: EmailMessage, timeout: float = 30) -> None:
    """Deliver one message through the configured SMTP server; raises MailError."""
    try:
        with smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT, timeout=timeout) as smtp:
            if settings.SMTP_STARTTLS:
                smtp.starttls()
            if settings.SMTP_USER:
                smtp.login(settings.SMTP_USER, settings.SMTP_PASSWORD)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # The exception text never carries the SMTP password.
        raise MailError(f"could not send mail via {settings.SMTP_HOST}:{settings.SMTP_PORT}: {exc}") from exc
