"""Posting JSON notifications to webhooks; Slack-compatible incoming webhooks included.

A payload always has a `text` field (what Slack shows) and the structured facts beside it
under `details`, so the same post serves a chat channel and a machine receiver. Values from
user data are escaped where they go into `text`; `details` keeps them as they are.
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Delivery:
    """What happened to one post: the HTTP status, or the error that prevented one."""

    url: str
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def message(text: str, **details: Any) -> dict[str, Any]:
    return {"text": text, "details": details}


def slack_escaped(value: str) -> str:
    """A value to put into a message's `text` that Slack shows as it is, never as a mention,
    a link or an entity: Slack's own escaping of &, < and >
    (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescaped(text: str) -> str:
    """A message's `text` as a person reads it in Slack, for showing it elsewhere."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def post_json(url: str, payload: Mapping[str, Any], timeout_s: float = 10.0,
              attempts: int = 3) -> Delivery:
    """POST the payload; retry connection errors and 5xx answers with backoff; never raise."""
    body = json.dumps(payload, default=str).encode()
    error: str | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Delivery(url, response.status, None)
        except urllib.error.HTTPError as answer:
            if answer.code < 500:
                return Delivery(url, answer.code, f"HTTP {answer.code}")
            error = f"HTTP {answer.code}"
        except (urllib.error.URLError, OSError) as failure:
            error = str(getattr(failure, "reason", failure))
    return Delivery(url, None, error)


def notify(urls: list[str], payload: Mapping[str, Any]) -> list[Delivery]:
    return [post_json(url, payload) for url in urls]
