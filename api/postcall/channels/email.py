"""Email over SMTP (the operator's server: VOXLINE_SMTP_*).

The SMTP host is operator configuration, not user input, so it is not SSRF-checked;
users only choose the recipients. smtplib runs in a worker thread (it blocks).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from api.postcall.channels.base import DeliveryFailed, SendContext, SendResult, default_text
from api.postcall.delivery_config import EmailConfig
from api.settings import ServerSettings

# Permanent SMTP refusals (5xx) other than "try later": retrying will not help.
_PERMANENT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused)


def build_message(config: EmailConfig, ctx: SendContext) -> EmailMessage:
    message = EmailMessage()
    subject = " ".join(ctx.render(config.subject_template).split())  # no header injection
    message["Subject"] = subject[:300]
    message["From"] = ctx.settings.smtp_from
    message["To"] = ", ".join(config.to)
    if config.cc:
        message["Cc"] = ", ".join(config.cc)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="voxline")
    # Mail clients thread on this; receivers can also drop duplicates of a retry.
    message["X-Voxline-Idempotency-Key"] = str(ctx.payload["delivery_id"])
    body = ctx.render(config.body_template) if config.body_template else default_text(ctx.payload)
    message.set_content(body)
    return message


def _send_blocking(s: ServerSettings, message: EmailMessage, timeout: float) -> str:
    assert s.smtp_host is not None
    if s.smtp_security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            s.smtp_host, s.smtp_port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
    with client:
        if s.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if s.smtp_username:
            client.login(s.smtp_username, s.smtp_password or "")
        refused = client.send_message(message)
    if refused:
        return f"refused: {sorted(refused)}"
    return "accepted"


async def send(config: EmailConfig, ctx: SendContext) -> SendResult:
    s = ctx.settings
    if not s.smtp_host:
        raise DeliveryFailed("email: VOXLINE_SMTP_HOST is not set", retryable=False)
    message = build_message(config, ctx)
    try:
        outcome = await asyncio.to_thread(_send_blocking, s, message, ctx.timeout_s)
    except _PERMANENT as exc:
        raise DeliveryFailed(f"email: {exc}", retryable=False) from exc
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(
            f"email: SMTP {exc.smtp_code} {exc.smtp_error!r}",
            status_code=exc.smtp_code,
            retryable=exc.smtp_code < 500,
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"email: {type(exc).__name__}: {exc}") from exc
    return SendResult(250, outcome)
