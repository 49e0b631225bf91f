"""Headless Chromium driven over the DevTools protocol: a page that stays open while the test
changes what it shows (the CLI's --dump-dom sees one moment only)."""

import json
import re
import subprocess
import time
import urllib.request
from contextlib import ExitStack
from itertools import count
from pathlib import Path

from websockets.sync.client import connect

from tests.telemetry_assets.dashboard.test_dashboard import CHROMIUM


class Browser:
    def __init__(self, profile: Path) -> None:
        assert CHROMIUM, "Debian's chromium is not installed: `make test` installs it"
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        port = None
        deadline = time.monotonic() + 60
        while port is None:
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = found and int(found.group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            (page,) = [t for t in json.load(answer) if t["type"] == "page"]
        self._opened = ExitStack()
        self.socket = self._opened.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None))
        self._ids = count(1)

    def call(self, method: str, **params: object) -> dict:
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv(timeout=60))
            if answer.get("id") == message_id:
                assert "error" not in answer, answer
                return answer.get("result", {})

    def open(self, url: str, width: int = 1400, height: int = 900) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> object:
        """The first truthy value of `expression`, evaluated in the page until it is one."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"never true in the page: {expression}"
            time.sleep(0.1)

    def close(self) -> None:
        self._opened.close()
        self.process.terminate()
        self.process.wait(timeout=30)
