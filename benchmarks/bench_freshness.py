"""How fresh a page is: seconds from the first failed request the receiver accepts to the
`service_mood` notification that the scenario is breaching, and from the recovery to the
notification that it no longer is. Goal: under 120 s for both.

Everything is real and on loopback: the HTTP receiver (`telemetry_ingest serve`) lands events
from `telemetry_client` into a fresh platform directory, `dagster-daemon` runs the sensor as
`make ui` would (headless), and a webhook sink in this process notes when each post arrives.
Traffic is stamped with the current time: healthy first, so that the mood's windows have
traffic, then a total outage of one scenario until the page arrives, then a recovery.

The failed request is "accepted" when the client's sender has the receiver's 200 for the batch
holding it (the receiver answers once the batch is durable in the landing folder); the recovery
likewise from the first successful request after the outage. Beside the end-to-end figures, the
time from each notification's `as_of` (the instant the mood was judged to change) to its arrival
says how much of the wait is the pipeline rather than the burn-rate windows.

With the platform's default rules the recovery cannot be seen within a bounded run: the page
rule `page:6:6h:30m` keeps firing until the outage has left its 30-minute window, whatever the
5-minute one says, and the ticket rule and the spent budget keep the scenario degraded after
that. The run then reports no recovery notification and the rules still firing at its end;
BENCH_FRESHNESS_MOOD_RULES=page:14.4:1h:5m measures a page that clears with its 5-minute window.

BENCH_FRESHNESS_HEALTHY_SECONDS (180), BENCH_FRESHNESS_PAGE_TIMEOUT (300) and
BENCH_FRESHNESS_RECOVERY_TIMEOUT (420) bound the phases; BENCH_FRESHNESS_MOOD_RULES, when set,
is the daemon's TELEMETRY_MOOD_RULES (e.g. `page:14.4:1h:5m`).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from telemetry_client import TelemetryClient
from tests.helpers import REPO
from tests.telemetry_ingest.servers import TOKEN, Receiver

HEALTHY_SECONDS = float(os.environ.get("BENCH_FRESHNESS_HEALTHY_SECONDS", "180"))
PAGE_TIMEOUT = float(os.environ.get("BENCH_FRESHNESS_PAGE_TIMEOUT", "300"))
RECOVERY_TIMEOUT = float(os.environ.get("BENCH_FRESHNESS_RECOVERY_TIMEOUT", "420"))
MOOD_RULES = os.environ.get("BENCH_FRESHNESS_MOOD_RULES", "").strip()
GOAL_SECONDS = 120.0

TARGET = "checkout.purchase_quote"
# scenario -> (an operation the reference maps to it, requests per minute)
TRAFFIC = {
    TARGET: ("GetQuote", 1000),
    "checkout.place_order": ("PostOrder", 300),
    "search.keyword_search": ("GetSearch", 200),
}
PARTNERS = ("adatum", "adventure-works")
BIN = Path(sys.executable).parent


class WebhookSink:
    """Every JSON POST received, with the wall time it arrived."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, dict[str, Any]]] = []
        self._changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._changed:
                    sink.posts.append((arrived, json.loads(body)))
                    sink._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookSink":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, wanted: Callable[[float, dict], bool], timeout: float,
                 ) -> tuple[float, dict] | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, post in self.posts:
                    if wanted(arrived, post):
                        return arrived, post
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)


class Traffic(threading.Thread):
    """Steady requests for every scenario of TRAFFIC, the target failing while `failing`."""

    def __init__(self, client: TelemetryClient) -> None:
        super().__init__(name="bench-traffic", daemon=True)
        self.client = client
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._failing = False
        self._switched: threading.Event | None = None
        # Of the first target request after each switch: when it was made and its place in
        # the client's queue, which is sent in order, so `accepted` reaching it means it landed.
        self.first_after_switch: tuple[float, int] | None = None
        self.sent: Counter = Counter()
        self.failed: Counter = Counter()

    def switch(self, failing: bool) -> threading.Event:
        with self._lock:
            self._failing = failing
            self.first_after_switch = None
            self._switched = threading.Event()
            return self._switched

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopping.wait(0.05):
            elapsed = time.monotonic() - started
            for scenario, (operation, per_minute) in TRAFFIC.items():
                for _ in range(int(elapsed * per_minute / 60) - self.sent[scenario]):
                    self._request(scenario, operation)

    def _request(self, scenario: str, operation: str) -> None:
        with self._lock:
            fails = scenario == TARGET and self._failing
            partner = PARTNERS[self.sent[scenario] % len(PARTNERS)]
            with self.client.correlation(scenario=scenario, partner=partner), \
                    self.client.request(operation, request_type="POST") as request:
                request.http_status = 503 if fails else 200
            self.sent[scenario] += 1
            self.failed[scenario] += fails
            if scenario == TARGET and self._switched and not self._switched.is_set():
                self.first_after_switch = (time.time(), self.client.stats().enqueued)
                self._switched.set()


def accepted_at(client: TelemetryClient, traffic: Traffic, switched: threading.Event,
                timeout: float = 60.0) -> float:
    """Wall time at which the receiver had accepted the first target request after a switch."""
    if not switched.wait(timeout):
        raise TimeoutError("the traffic thread made no request of the target")
    assert traffic.first_after_switch is not None
    _, position = traffic.first_after_switch
    deadline = time.monotonic() + timeout
    while client.stats().accepted < position:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the receiver did not accept event {position}: {client.stats()}")
        time.sleep(0.01)
    return time.time()


def target_change(state: Callable[[str], bool], previous: str | None, after: float):
    def wanted(arrived: float, post: dict) -> bool:
        details = post.get("details", {})
        return (details.get("scenario_id") == TARGET and state(details.get("state", ""))
                and (previous is None or details.get("previous_state") == previous)
                and arrived >= after)
    return wanted


def platform_env(root: Path, webhook: str) -> dict[str, str]:
    # A TELEMETRY_* of the caller's shell would point the daemon at another lake or policy.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TELEMETRY_", "DAGSTER_"))}
    env.update(TELEMETRY_DATA_DIR=str(root / "data"), DAGSTER_HOME=str(root / "dagster_home"),
               TELEMETRY_MOOD_WEBHOOKS=webhook, PYTHONPATH=str(REPO))
    if MOOD_RULES:
        env["TELEMETRY_MOOD_RULES"] = MOOD_RULES
    return env


def prepare_platform(root: Path, env: dict[str, str]) -> None:
    shutil.copytree(REPO / "data" / "reference", root / "data" / "reference")
    (root / "dagster_home").mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    with (root / "reference_job.log").open("wb") as log:
        done = subprocess.run(
            [BIN / "dagster", "job", "execute", "-m", "telemetry_assets.definitions",
             "-j", "reference_data"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300, check=False)
    if done.returncode:
        tail = (root / "reference_job.log").read_text()[-3000:]
        raise RuntimeError(f"reference_data job failed ({done.returncode}):\n{tail}")


def stop_group(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL, to the process's group: the daemon's code server goes with it."""
    if process is None or process.poll() is not None:
        return
    for sent, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def mood_ticks(dagster_home: Path) -> list:
    """The service_mood sensor's ticks, oldest first, from the daemon's instance."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        ticks = []
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name == "service_mood":
                ticks += instance.get_ticks(state.instigator_origin_id, state.selector_id)
        return sorted(ticks, key=lambda tick: tick.timestamp)


def mood_now(root: Path, env: dict[str, str]) -> str:
    """The target's mood as the lake now says (the daemon's last refresh): which rules fire."""
    # notices first, as definitions.py does: the assets' deliberate beta notices stay silent.
    import telemetry_assets.notices  # noqa: F401
    from telemetry_assets import live
    from telemetry_assets.lake import Lake
    from telemetry_assets.mood.burn_rates import MoodPolicy, current_mood

    data = root / "data"
    policy = MoodPolicy.from_env(env)
    report = live.read_current(Lake(data / "lake", data / "warehouse.duckdb"),
                               lambda con: current_mood(con, policy)).value
    mood = next((s for s in report.scenarios if s.scenario_id == TARGET), None) if report else None
    if mood is None:
        return "no mood for the target"
    rates = ", ".join(f"{name} {w.burn_rate:.1f}x ({w.failed}/{w.requests})"
                      for name, w in mood.windows.items() if w.burn_rate is not None)
    return (f"{mood.state} as of {mood.as_of:%H:%M:%S} UTC, firing "
            f"{list(mood.firing) or 'nothing'}; burn rates {rates}")


def as_of_lag(arrived: float, post: dict) -> float:
    return arrived - datetime.fromisoformat(post["details"]["as_of"]).timestamp()


def main() -> None:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as work, WebhookSink() as sink:
        root = Path(work)
        env = platform_env(root, sink.url)
        daemon = client = traffic = receiver = daemon_log = None
        started = time.monotonic()
        try:
            prepare_platform(root, env)
            figures["setup"] = time.monotonic() - started
            receiver = Receiver(root / "data" / "landing", root / "receiver.log").start()
            daemon_log = (root / "daemon.log").open("wb")
            daemon = subprocess.Popen(
                [BIN / "dagster-daemon", "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                stdout=daemon_log, stderr=subprocess.STDOUT, start_new_session=True)
            client = TelemetryClient(receiver.url, TOKEN, role="bench-freshness")
            traffic = Traffic(client)
            traffic.start()
            time.sleep(HEALTHY_SECONDS)
            if daemon.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited with {daemon.returncode}")

            failed_from = accepted_at(client, traffic, traffic.switch(failing=True))
            figures["failed_from"] = failed_from
            page = sink.wait_for(target_change(lambda s: s == "breaching", None, failed_from),
                                 PAGE_TIMEOUT)
            figures["page"] = page
            if page is not None:
                recovered_from = accepted_at(client, traffic, traffic.switch(failing=False))
                figures["recovered_from"] = recovered_from
                figures["recovery"] = sink.wait_for(
                    target_change(lambda s: s != "breaching", "breaching", recovered_from),
                    RECOVERY_TIMEOUT)
        finally:
            if traffic is not None:
                traffic.stopping.set()
                traffic.join(timeout=10)
            if client is not None:
                client.close(timeout=10)
            stop_group(daemon)
            if daemon_log is not None:
                daemon_log.close()
            if receiver is not None:
                receiver.stop()
            figures["total"] = time.monotonic() - started
            report(root, env, sink, figures, traffic, client)


def verdict(waited: float) -> str:
    return f"goal < {GOAL_SECONDS:.0f} s -> {'met' if waited < GOAL_SECONDS else 'NOT met'}"


def report(root: Path, env: dict[str, str], sink: WebhookSink, figures: dict[str, Any],
           traffic: Traffic | None, client: TelemetryClient | None) -> None:
    rules = MOOD_RULES or "the platform's defaults (page:14.4:1h:5m, page:6:6h:30m, ticket:1:3d:6h)"
    print(f"  rules: {rules}; setup (reference_data job) {figures.get('setup', 0):.0f} s, "
          f"healthy traffic {HEALTHY_SECONDS:.0f} s, whole run {figures['total']:.0f} s")
    if traffic is not None and client is not None:
        sent = ", ".join(f"{s} {n} ({traffic.failed[s]} failed)" for s, n in traffic.sent.items())
        print(f"  requests sent: {sent}; client {client.stats()}")
    failed_from = figures.get("failed_from")
    page = figures.get("page")
    if failed_from is not None:
        if page is None:
            print(f"  page: NO breaching notification for {TARGET} within {PAGE_TIMEOUT:.0f} s "
                  f"of the first failed request accepted -> goal NOT met")
        else:
            arrived, post = page
            waited = arrived - failed_from
            print(f"  page: {post['details']['previous_state']} -> breaching received "
                  f"{waited:.1f} s after the first failed request was accepted "
                  f"({verdict(waited)}); {as_of_lag(*page):.1f} s after its as_of "
                  f"{post['details']['as_of']}; "
                  f"firing {post['details'].get('firing')}")
    recovered_from = figures.get("recovered_from")
    recovery = figures.get("recovery")
    if recovered_from is not None:
        if recovery is None:
            print(f"  recovery: NO notification of {TARGET} leaving breaching within "
                  f"{RECOVERY_TIMEOUT:.0f} s of the first successful request accepted -> goal "
                  f"NOT met")
        else:
            arrived, post = recovery
            waited = arrived - recovered_from
            print(f"  recovery: breaching -> {post['details']['state']} received {waited:.1f} s "
                  f"after the first successful request was accepted ({verdict(waited)}); "
                  f"{as_of_lag(*recovery):.1f} s after its as_of {post['details']['as_of']}")
    for arrived, post in sink.posts:
        details = post.get("details", {})
        print(f"    post at {datetime.fromtimestamp(arrived, UTC):%H:%M:%S}: "
              f"{details.get('scenario_id')} {details.get('previous_state')} -> "
              f"{details.get('state')} as of {details.get('as_of')}")
    if (root / "data" / "lake").exists():
        try:
            print(f"  {TARGET} at the end: {mood_now(root, env)}")
        except Exception as error:  # the figures above stand without it
            print(f"  {TARGET} at the end: could not be read ({error!r})")
    try:
        ticks = mood_ticks(root / "dagster_home") if (root / "dagster_home").exists() else []
    except Exception as error:
        print(f"  service_mood ticks: could not be read ({error!r})")
        ticks = []
    durations = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
    if durations:
        print(f"  service_mood ticks: {len(ticks)} {dict(Counter(t.status.value for t in ticks))}"
              f", each {min(durations):.1f}-{max(durations):.1f} s (median "
              f"{sorted(durations)[len(durations) // 2]:.1f} s); relative to the first failed "
              f"request accepted:")
        # When each tick ran and what it saw: where between landing and posting the time went.
        zero = failed_from or ticks[0].timestamp
        for tick in ticks:
            took = f"{tick.end_timestamp - tick.timestamp:5.1f} s" if tick.end_timestamp else "  ?"
            said = (tick.skip_reason or "")[:110]
            print(f"    {tick.timestamp - zero:+7.1f} s  {took}  {tick.status.value:8} {said}")
    else:
        print(f"  service_mood ticks: {len(ticks)}")
    errors = [t for t in ticks if t.error is not None]
    if errors:
        print(f"  {len(errors)} tick(s) failed; the first:\n{errors[0].error.to_string()}")
    log = root / "daemon.log"
    if (page is None or errors) and log.exists():
        print("  daemon log (tail):\n" + log.read_text(errors="replace")[-4000:])


if __name__ == "__main__":
    main()
