"""Real servers on loopback for the notification sinks' tests: Alertmanager (with a webhook
receiver of its own), an SMTP server and Prosody, each with its config and data in a tmp folder."""

import asyncio
import email
import email.policy
import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import slixmpp
import yaml
from aiosmtpd.controller import Controller

from tests.helpers import free_port
from tests.telemetry_ingest.servers import wait_for_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
PROSODY, PROSODYCTL = "/usr/bin/prosody", "/usr/bin/prosodyctl"
GROUP_BY = ["alertname", "service", "scenario", "partner"]

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """The predicate's first truthy value, polled until the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what or predicate}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


async def cancel_tasks() -> None:
    """Ends the loop's other tasks, which slixmpp leaves running (its send queue's filters)."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Webhook:
    """A threaded HTTP server on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self._posts: list[Any] = []
        self._lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with webhook._lock:
                    webhook._posts.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "Webhook":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[Any]:
        with self._lock:
            return list(self._posts)


class Alertmanager:
    """`prometheus-alertmanager`, clustering off, routing every alert to a `Webhook`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook = Webhook()
        self.process: subprocess.Popen | None = None

    def start(self) -> "Alertmanager":
        self.webhook.start()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump({
            "route": {
                "receiver": "fixture", "group_by": GROUP_BY,
                "group_wait": "1s", "group_interval": "1s", "repeat_interval": "24h",
            },
            "receivers": [{"name": "fixture", "webhook_configs": [
                {"url": self.webhook.url, "send_resolved": True},
            ]}],
        }))  # fmt: skip
        command = [
            ALERTMANAGER, f"--config.file={config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # Empty: no cluster, so no gossip port and no peers to look for.
            "--cluster.listen-address=",
        ]  # fmt: skip
        with open(self.workdir / "alertmanager.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.process)
            wait_until(lambda: self._get("/-/ready", parse=False) is not None, what="ready")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.webhook.stop()

    def _get(self, path: str, parse: bool = True) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                body = response.read()
        except OSError:
            return None
        return json.loads(body) if parse else body

    def alerts(self, active: bool | None = None) -> list[dict]:
        query = "" if active is None else "?" + urllib.parse.urlencode({"active": active}).lower()
        return self._get("/api/v2/alerts" + query)

    def groups(self) -> list[dict]:
        return self._get("/api/v2/alerts/groups")

    def post_alerts(self, alerts: list[dict]) -> int:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def webhook_posts(self) -> list[dict]:
        return self.webhook.posts()


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class _Collector:
    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on loopback, keeping every message it accepts (no auth, no TLS)."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname=self.host, port=self.port)

    @property
    def messages(self) -> list[ReceivedMail]:
        return list(self._collector.messages)

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


PROSODY_CONFIG = """\
-- A private server for one test: loopback only, no TLS, no s2s, nothing but c2s listening.
run_as_root = true  -- test containers run as root; this instance is throwaway
pidfile = "{workdir}/prosody.pid"
data_path = "{workdir}/data"
certificates = "{workdir}/certs"
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
modules_enabled = {{ "roster", "saslauth", "disco" }}
modules_disabled = {{ "s2s", "s2s_auth_certs", "offline" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{workdir}/prosody.log" }} }}
VirtualHost "{host}"
"""


class Prosody:
    """A private `prosody` in the foreground: one virtual host, c2s on a free loopback port."""

    def __init__(self, workdir: Path, host: str = "localhost") -> None:
        self.workdir = workdir
        self.host = host
        self.host_address = "127.0.0.1"
        self.port = free_port()
        self.config = workdir / "prosody.cfg.lua"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Prosody":
        for folder in (self.workdir / "data", self.workdir / "certs"):
            folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            PROSODY_CONFIG.format(workdir=self.workdir, port=self.port, host=self.host)
        )
        with open(self.workdir / "prosody.out", "ab") as log:
            self.process = subprocess.Popen(
                [PROSODY, "--config", str(self.config), "-F"], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port(self.port, self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def create_account(self, user: str, password: str) -> str:
        """Registers user@host (replacing its password if it exists); returns the bare JID."""
        subprocess.run(
            [PROSODYCTL, "--config", str(self.config), "register", user, self.host, password],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return f"{user}@{self.host}"

    def stop(self) -> None:
        stop_process(self.process)


@dataclass(frozen=True)
class SeenPresence:
    jid: str
    resource: str
    type: str  # available, unavailable, subscribe, subscribed, ...
    show: str
    status: str
    at: float = field(default_factory=time.monotonic, compare=False)


class XmppClient:
    """A slixmpp client on a loop and thread of its own, logged in over plain TCP on loopback,
    recording every presence it receives."""

    def __init__(self, server: Prosody, jid: str, password: str, resource: str = "test") -> None:
        self.server = server
        self.jid = f"{jid}/{resource}"
        self._password = password
        self._presences: list[SeenPresence] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.client: slixmpp.ClientXMPP | None = None

    def start(self, timeout: float = 10.0) -> "XmppClient":
        self._thread.start()
        self._run(self._login(), timeout)
        return self

    async def _login(self) -> None:
        client = slixmpp.ClientXMPP(
            self.jid, self._password,
            plugin_config={"feature_mechanisms": {"unencrypted_scram": True}},
        )  # fmt: skip
        # Plain TCP: no direct TLS, no STARTTLS (the server offers none), SCRAM unencrypted.
        client.enable_direct_tls = client.enable_starttls = False
        client.enable_plaintext = True
        client.add_event_handler("presence", self._record)
        started = self._loop.create_future()
        client.add_event_handler("session_start", lambda _: started.set_result(None))
        client.add_event_handler(
            "failed_all_auth", lambda _: started.set_exception(RuntimeError("login refused"))
        )
        client.connect(self.server.host_address, self.server.port)
        await started
        client.send_presence()
        await client.get_roster()
        self.client = client

    def _record(self, presence: Any) -> None:
        seen = SeenPresence(
            presence["from"].bare, presence["from"].resource, presence["type"],
            presence["show"], presence["status"],
        )  # fmt: skip
        with self._lock:
            self._presences.append(seen)

    def presences(self, of: str | None = None) -> list[SeenPresence]:
        with self._lock:
            return [p for p in self._presences if of is None or p.jid == of]

    def wait_quiet(self, of: str, quiet: float = 0.5, timeout: float = 10.0) -> int:
        """How many presences from `of` were received, once none has come for `quiet` s."""

        def settled() -> int | None:
            seen = self.presences(of)
            return len(seen) if seen and time.monotonic() - seen[-1].at > quiet else None

        return wait_until(settled, timeout, f"no presence from {of} for {quiet} s")

    def subscribe(self, bare_jid: str) -> None:
        self._loop.call_soon_threadsafe(self.client.send_presence_subscription, bare_jid)

    def _run(self, coroutine: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        async def disconnect() -> None:
            if self.client is not None:
                await self.client.disconnect()
            await cancel_tasks()

        if self._thread.is_alive():
            self._run(disconnect(), 10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()
