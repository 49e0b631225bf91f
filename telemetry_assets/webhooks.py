"""Slack-compatible JSON notifications to webhooks (posted by telemetry_notify/send.py).

A payload always has a `text` field (what Slack shows) and the structured facts beside it
under `details`, so the same post serves a chat channel and a machine receiver. Values from
user data are escaped where they go into `text`; `details` keeps them as they are.
"""

from collections.abc import Mapping
from typing import Any

from telemetry_notify.formats import slack_escaped
from telemetry_notify.send import Delivery, post_json


def message(text: str, **details: Any) -> dict[str, Any]:
    return {"text": text, "details": details}


def slack_unescaped(text: str) -> str:
    """A message's `text` as a person reads it in Slack, for showing it elsewhere."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def notify(urls: list[str], payload: Mapping[str, Any]) -> list[Delivery]:
    return [post_json(url, payload) for url in urls]


__all__ = ["Delivery", "message", "notify", "post_json", "slack_escaped", "slack_unescaped"]
