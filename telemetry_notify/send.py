"""Transports: an HTTP POST with retries, a signed webhook, an email over SMTP; none raises.

An answer of 408, 429 or 5xx, or no answer at all, is worth trying again (within a call, with a
short backoff, and later from the outbox); any other 4xx says the message itself is refused,
and sending it again would be refused again.
"""

import hashlib
import hmac
import http.client
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

RETRYABLE_STATUSES = frozenset({408, 429})
SIGNATURE_HEADER = "X-Telemetry-Signature"
DELIVERY_HEADER = "X-Telemetry-Delivery"
TIMESTAMP_HEADER = "X-Telemetry-Timestamp"


@dataclass(frozen=True)
class Delivery:
    """What happened to one send: the answer's status, or the error that prevented one."""

    url: str
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return not self.ok and (self.status is None or self.status in RETRYABLE_STATUSES
                                or self.status >= 500)


def post(url: str, body: bytes, headers: Mapping[str, str] | None = None,
         timeout_s: float = 10.0, attempts: int = 3) -> Delivery:
    """POST `body`; retry what is worth retrying with backoff; never raise."""
    outcome = Delivery(url, None, "not sent")
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        try:
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", **(headers or {})})
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Delivery(url, response.status, None)
        except urllib.error.HTTPError as answer:
            outcome = Delivery(url, answer.code, f"HTTP {answer.code}")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as failure:
            outcome = Delivery(url, None, _without(url, getattr(failure, "reason", failure)))
        except ValueError as failure:
            # Not a URL urllib can send to (no scheme, spaces): sending it again will not help.
            return Delivery(url, 400, _without(url, failure))
        if not outcome.retryable:
            return outcome
    return outcome


def _without(url: str, failure: object) -> str:
    """An error's text with the URL cut out: a Slack webhook's URL is its secret."""
    text = str(failure) or type(failure).__name__
    for part in {url, url.split("://", 1)[-1]}:
        if part:
            text = text.replace(part, "<url>")
    return text


def post_json(url: str, payload: Mapping[str, Any] | Sequence[Any],
              headers: Mapping[str, str] | None = None, **options: Any) -> Delivery:
    return post(url, json.dumps(payload, default=str).encode(), headers, **options)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed too, so
    a receiver that refuses old timestamps refuses a replayed delivery."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def post_signed(url: str, payload: Mapping[str, Any], delivery_id: str,
                secret: str | None, **options: Any) -> Delivery:
    """The generic webhook: the delivery id (the same on every retry) and, with a secret, the
    signature headers."""
    body = json.dumps(payload, default=str).encode()
    timestamp = str(int(time.time()))
    headers = {DELIVERY_HEADER: delivery_id, TIMESTAMP_HEADER: timestamp}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    return post(url, body, headers, **options)


def send_email(message: EmailMessage, host: str, port: int, starttls: bool = False,
               username: str | None = None, password: str | None = None,
               timeout_s: float = 20.0) -> Delivery:
    """Hand the message to the SMTP server; a refused recipient or sender is final, a server
    that cannot be reached or answers 4xx is worth trying again."""
    where = f"smtp://{host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=timeout_s) as smtp:
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
            if username and password:
                smtp.login(username, password)
            refused = smtp.send_message(message)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
        return Delivery(where, 550, f"refused: {error}")
    except smtplib.SMTPResponseException as error:
        return Delivery(where, error.smtp_code if error.smtp_code >= 500 else None,
                        f"SMTP {error.smtp_code}: {error.smtp_error!r}")
    except (smtplib.SMTPException, OSError) as error:
        return Delivery(where, None, str(error) or type(error).__name__)
    if refused:
        return Delivery(where, 550, f"refused recipients: {', '.join(refused)}")
    return Delivery(where, 250, None)
