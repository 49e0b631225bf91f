"""Webhook posts against a real HTTP server on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from telemetry_assets.resources import MoodSettings, split_urls
from telemetry_assets.webhooks import message, notify, post_json


@pytest.fixture
def receiver():
    received: list[dict] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, answers
    server.shutdown()
    server.server_close()


def test_post_delivers_slack_compatible_json(receiver):
    url, received, _ = receiver
    delivery = post_json(url, message("checkout is breaching", scenario="checkout"))
    assert delivery.ok and delivery.status == 200
    assert received == [{"text": "checkout is breaching", "details": {"scenario": "checkout"}}]


def test_server_errors_are_retried_client_errors_are_not(receiver):
    url, received, answers = receiver
    answers.extend([503, 500])
    assert post_json(url, {"text": "x"}).ok
    assert len(received) == 3
    answers.append(404)
    delivery = post_json(url, {"text": "y"})
    assert (delivery.ok, delivery.status, len(received)) == (False, 404, 4)


def test_unreachable_webhook_is_reported_not_raised():
    (delivery,) = notify(["http://127.0.0.1:9/nothing-listens"], {"text": "x"})
    assert not delivery.ok and delivery.status is None and delivery.error


def test_urls_come_from_a_comma_separated_variable(monkeypatch):
    assert split_urls(" http://a/1 ,, http://b/2 ") == ["http://a/1", "http://b/2"]
    monkeypatch.setenv("TELEMETRY_MOOD_WEBHOOKS", "http://a/1")
    assert MoodSettings().webhook_urls == ["http://a/1"]
    assert MoodSettings(webhooks="http://b/2,http://c/3").webhook_urls == ["http://b/2",
                                                                           "http://c/3"]
    monkeypatch.delenv("TELEMETRY_MOOD_WEBHOOKS")
    assert MoodSettings().webhook_urls == []
