"""How fresh a page is, with a day of history behind the live traffic: seconds from the first
failed request the receiver accepts to the `service_mood` notification that the scenario is
breaching, and from the recovery to the notification that it no longer is.

Goal: the page under 120 s after the first failed request is accepted; the recovery notification
under the fast page rule's short window (5 minutes) plus 120 s after the first successful
request; and, for every notification, under 120 s from its `as_of` (the instant the rules judged
the change, in its details) to its arrival at the webhook: the pipeline's own latency.

Recovery cannot be faster than the fast rule's short window. A page rule fires while the burn
rate is over its threshold over both its long and its short window, so it resolves when the
short one is clean of failures again (the SRE Workbook's multi-window design: the long window
keeps a rule from firing on a blip, the short one makes it stop soon after the problem does).
With `page:14.4:1h:5m` that is 5 minutes of failure-free traffic — counted in whole minutes, so
4 to 5 minutes after the last failed request — and the notification follows at the next 30-s
tick of the sensor. The recovery is printed split in three: from the first success until the
short window holds no failed minute (the rules), from then to the tick that judged it, at its
`as_of` (the sensor's 30-s interval), and from `as_of` to arrival (the tick's processing).

Everything is real and on loopback: the HTTP receiver (`telemetry_ingest serve`) lands events
from `telemetry_client` into a fresh platform directory, `dagster-daemon` runs the sensor as
`make ui` would (headless), and a webhook sink in this process notes when each post arrives.

History: without it the 6h and 3d windows and the 28-day budget are made of the same few minutes
as the 5m one, so a short outage trips the slow page rule (6x over 6h and 30m), the ticket rule
and the budget, and the scenario stays breaching or degraded for hours. So the run first writes
24 hours of healthy traffic at the live rates (~1,500 requests a minute, ~2.2M events) as landing
files, SPEC §2 events in the client's own shape with ids `hist-…` (the client's are uuid4 hex,
so they never collide), ending at the start of the current UTC hour, and processes those hours
exactly with `telemetry backfill` (one in-process range run, reference data first) before the
daemon starts. The current hour's minutes before the live traffic are written as landing files
when the traffic starts, so the open hour has no gap; the sensor's live path reads them.

With that history the page, too, waits on the rules: with every request failing, the fast rule's
1h window reaches 14.4x after 14.4 x 0.1 % x 1 h = 52 s of outage (the SRE Workbook's detection
time), so the page comes some 52-85 s after the first failure (plus landing and the next tick),
where the few minutes of the old run's 1h window gave 25 s. An outage that long (~900-1,400
failures) fires only the fast page rule: its 1h window ~15-23x, the 6h one ~3-4x (the slow rule
needs 6x), the 3d one and the budget under 1x. One much longer spends the day's error budget
(~1,450 failures at 99.9 %) and leaves the scenario degraded, not healthy, after the page clears.

Phases: healthy live traffic for BENCH_FRESHNESS_HEALTHY_SECONDS (60) and until a sensor tick
has judged it; a total outage of the target (`checkout.purchase_quote`, SLO 99.9 %) until the
page arrives but at least BENCH_FRESHNESS_OUTAGE_SECONDS (60); then recovery, waiting up to
BENCH_FRESHNESS_RECOVERY_TIMEOUT (480) for the target to leave breaching.
BENCH_FRESHNESS_PAGE_TIMEOUT (300) bounds the wait for the page; BENCH_FRESHNESS_HISTORY_HOURS
(24) the exact history; BENCH_FRESHNESS_MOOD_RULES, when set, is the daemon's
TELEMETRY_MOOD_RULES (default: the platform's rules).

The failed request is "accepted" when the client's sender has the receiver's 200 for the batch
holding it (the receiver answers once the batch is durable in the landing folder); the recovery
likewise from the first successful request after the outage.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from telemetry_client import STATUS_SUCCESS, TelemetryClient, build_event
from telemetry_core.landing import hour_folder
from tests.helpers import REPO
from tests.telemetry_ingest.servers import TOKEN, Receiver

HISTORY_HOURS = int(os.environ.get("BENCH_FRESHNESS_HISTORY_HOURS", "24"))
HEALTHY_SECONDS = float(os.environ.get("BENCH_FRESHNESS_HEALTHY_SECONDS", "60"))
OUTAGE_SECONDS = float(os.environ.get("BENCH_FRESHNESS_OUTAGE_SECONDS", "60"))
PAGE_TIMEOUT = float(os.environ.get("BENCH_FRESHNESS_PAGE_TIMEOUT", "300"))
RECOVERY_TIMEOUT = float(os.environ.get("BENCH_FRESHNESS_RECOVERY_TIMEOUT", "480"))
MOOD_RULES = os.environ.get("BENCH_FRESHNESS_MOOD_RULES", "").strip()
GOAL_SECONDS = 120.0
# The first judging tick after the traffic starts parses the open hour's history: waited for,
# so that the outage meets a sensor in its steady state.
FIRST_TICK_TIMEOUT = 180.0
HOUR = timedelta(hours=1)
ROLE = "bench-freshness"
HISTORY_FILE = "bench-history.jsonl"

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
        # When the first request was due (wall time): the history ends there.
        self.began = threading.Event()
        self.started_wall = 0.0
        self.last_failed_at: float | None = None

    def switch(self, failing: bool) -> threading.Event:
        with self._lock:
            self._failing = failing
            self.first_after_switch = None
            self._switched = threading.Event()
            return self._switched

    def run(self) -> None:
        started = time.monotonic()
        self.started_wall = time.time()
        self.began.set()
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
            if fails:
                self.last_failed_at = time.time()
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


def prepare_platform(root: Path) -> None:
    shutil.copytree(REPO / "data" / "reference", root / "data" / "reference")
    (root / "dagster_home").mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")


def history_template(scenario: str, operation: str) -> str:
    """A healthy event of the scenario as the client builds it, as a %-template of (hour tag,
    scenario index, number in the hour, hour prefix, minute, second, millisecond, partner,
    latency)."""
    event = build_event(event_id="@ID@", time="@TIME@", operation=operation, latency_ms=0.0,
                        request_status=STATUS_SUCCESS, request_type="POST", caller="",
                        scenario=scenario, partner="@PARTNER@", environment="", role=ROLE,
                        role_instance=socket.gethostname())
    text = json.dumps(event, separators=(",", ":")).replace("%", "%%")
    for placeholder, field in (('"@ID@"', '"hist-%s-%d-%d"'),
                               ('"@TIME@"', '"%s:%02d:%02d.%03dZ"'),
                               ("@PARTNER@", "%s"),
                               ('"latencyMs":0.0', '"latencyMs":%d.0')):
        if text.count(placeholder) != 1:
            raise RuntimeError(f"the client's event shape has changed: {placeholder} in {text}")
        text = text.replace(placeholder, field)
    return text + "\n"


def _milliseconds(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def write_history(landing_dir: Path, start: datetime, end: datetime) -> int:
    """Healthy requests of every TRAFFIC scenario at its rate over [start, end), evenly spaced,
    as one landing file per hour folder (written under a hidden name, then renamed, as the
    receiver does); returns how many. Ids are `hist-<hour>-<scenario>-<n>`: never a uuid4 hex."""
    templates = [(history_template(scenario, operation), per_minute)
                 for scenario, (operation, per_minute) in TRAFFIC.items()]
    written = 0
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        low = max(0, _milliseconds(start - hour))
        high = min(_milliseconds(HOUR), _milliseconds(end - hour))
        tag, prefix = f"{hour:%Y%m%d%H}", f"{hour:%Y-%m-%dT%H}"
        lines = []
        for index, (template, per_minute) in enumerate(templates):
            # The scenario's k-th request of the hour is at k * 60000 / per_minute ms.
            first, last = -(-low * per_minute // 60000), -(-high * per_minute // 60000)
            for k in range(first, last):
                at = k * 60000 // per_minute
                lines.append(template % (tag, index, k, prefix, at // 60000, at // 1000 % 60,
                                         at % 1000, PARTNERS[k % len(PARTNERS)], 40 + k % 61))
        if lines:
            folder = hour_folder(landing_dir, hour)
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / f".{HISTORY_FILE}.tmp"
            temporary.write_text("".join(lines))
            os.replace(temporary, folder / HISTORY_FILE)
            written += len(lines)
        hour += HOUR
    return written


def backfill(root: Path, env: dict[str, str], start: datetime, end: datetime) -> None:
    """`telemetry backfill` over the closed history hours: reference data, then the hours as
    one run, executed in that process, before the daemon starts."""
    with (root / "backfill.log").open("wb") as log:
        done = subprocess.run(
            [BIN / "telemetry", "backfill", "--start", f"{start:%Y-%m-%dT%H:%M}",
             "--end", f"{end:%Y-%m-%dT%H:%M}"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600, check=False)
    if done.returncode:
        tail = (root / "backfill.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"telemetry backfill failed ({done.returncode}):\n{tail}")


def wait_for_judging_tick(dagster_home: Path, after: float, timeout: float) -> bool:
    """Whether a service_mood tick that began after `after` (wall time) finished in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(tick.timestamp >= after and tick.end_timestamp
                   for tick in mood_ticks(dagster_home)):
                return True
        except Exception:  # the daemon may not have written its sensor state yet
            pass
        time.sleep(3)
    return False


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


def fast_rule(env: dict[str, str]):
    """The page rule with the shortest short window: the one a short outage trips and clears."""
    from telemetry_assets.mood.burn_rates import MoodPolicy

    pages = [rule for rule in MoodPolicy.from_env(env).rules if rule.severity == "page"]
    return min(pages, key=lambda rule: rule.short_minutes) if pages else None


def main() -> None:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as work, WebhookSink() as sink:
        root = Path(work)
        landing = root / "data" / "landing"
        env = platform_env(root, sink.url)
        daemon = client = traffic = receiver = daemon_log = None
        started = time.monotonic()
        try:
            prepare_platform(root)
            current_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            history_start = current_hour - HISTORY_HOURS * HOUR
            figures["history_hours"] = (history_start, current_hour)
            figures["history_events"] = write_history(landing, history_start, current_hour)
            figures["history_seconds"] = time.monotonic() - started
            backfill_started = time.monotonic()
            backfill(root, env, history_start, current_hour)
            figures["backfill_seconds"] = time.monotonic() - backfill_started

            receiver = Receiver(landing, root / "receiver.log").start()
            daemon_log = (root / "daemon.log").open("wb")
            daemon = subprocess.Popen(
                [BIN / "dagster-daemon", "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                stdout=daemon_log, stderr=subprocess.STDOUT, start_new_session=True)
            client = TelemetryClient(receiver.url, TOKEN, role=ROLE)
            traffic = Traffic(client)
            traffic.start()
            if not traffic.began.wait(10):
                raise RuntimeError("the traffic thread did not start")
            # The open hour's minutes before the live traffic, so that it has no gap.
            live_from = datetime.fromtimestamp(traffic.started_wall, UTC)
            figures["open_hour_events"] = write_history(landing, current_hour, live_from)
            figures["live_from"] = live_from
            written = time.time()
            figures["setup"] = time.monotonic() - started
            time.sleep(max(0.0, traffic.started_wall + HEALTHY_SECONDS - time.time()))
            figures["first_tick"] = wait_for_judging_tick(root / "dagster_home", written,
                                                          FIRST_TICK_TIMEOUT)
            figures["healthy"] = time.time() - traffic.started_wall
            if daemon.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited with {daemon.returncode}")

            failed_from = accepted_at(client, traffic, traffic.switch(failing=True))
            assert traffic.first_after_switch is not None
            outage_began = traffic.first_after_switch[0]
            figures["failed_from"] = failed_from
            page = sink.wait_for(target_change(lambda s: s == "breaching", None, failed_from),
                                 PAGE_TIMEOUT)
            figures["page"] = page
            if page is not None:
                time.sleep(max(0.0, outage_began + OUTAGE_SECONDS - time.time()))
                recovered_from = accepted_at(client, traffic, traffic.switch(failing=False))
                figures["outage"] = ((traffic.last_failed_at or outage_began) - outage_began,
                                     traffic.failed[TARGET], traffic.last_failed_at)
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


def verdict(waited: float, goal: float = GOAL_SECONDS) -> str:
    return f"goal < {goal:.0f} s -> {'met' if waited < goal else 'NOT met'}"


def report(root: Path, env: dict[str, str], sink: WebhookSink, figures: dict[str, Any],
           traffic: Traffic | None, client: TelemetryClient | None) -> None:
    rules = MOOD_RULES or "the platform's defaults (page:14.4:1h:5m, page:6:6h:30m, ticket:1:3d:6h)"
    print(f"  rules: {rules}; whole run {figures['total']:.0f} s")
    if "history_hours" in figures:
        first, end = figures["history_hours"]
        print(f"  history: {figures.get('history_events', 0):,} healthy events over "
              f"[{first:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC written in "
              f"{figures.get('history_seconds', 0):.1f} s, then `telemetry backfill` of those "
              f"{HISTORY_HOURS} hours {figures.get('backfill_seconds', 0):.1f} s")
        if "live_from" in figures:
            print(f"  then {figures['open_hour_events']:,} events over [{end:%H:%M}, "
                  f"{figures['live_from']:%H:%M:%S}) UTC left as landing files for the live "
                  f"path, and live traffic from {figures['live_from']:%H:%M:%S}; setup "
                  f"{figures.get('setup', 0):.0f} s in all")
    if "healthy" in figures:
        tick = ("after a service_mood tick had judged it" if figures.get("first_tick")
                else f"NO service_mood tick finished within {FIRST_TICK_TIMEOUT:.0f} s")
        print(f"  healthy live traffic {figures['healthy']:.0f} s ({tick})")
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
                  f"({verdict(waited)}); firing {post['details'].get('firing')}")
            rule = fast_rule(env)
            if rule is not None and post["details"].get("slo_target_pct") is not None:
                # With every request failing, the long window's burn rate grows by 1/budget
                # per window-length of outage: the threshold takes threshold x budget x window.
                budget = (100.0 - post["details"]["slo_target_pct"]) / 100.0
                floor = rule.threshold * budget * rule.long_minutes * 60.0
                print(f"    the fast rule cannot fire before {floor:.1f} s of total outage "
                      f"({rule.threshold:g} x {100 * budget:g} % x "
                      f"{rule.long_minutes // 60} h of its long window); the other "
                      f"{waited - floor:.1f} s are landing, waiting for the next 30-s tick "
                      f"and processing")
    if "outage" in figures:
        lasted, failed, _ = figures["outage"]
        print(f"  outage: {TARGET} failed every request for {lasted:.0f} s ({failed} failed "
              f"requests; at least {OUTAGE_SECONDS:.0f} s and until the page)")
    recovered_from = figures.get("recovered_from")
    recovery = figures.get("recovery")
    rule = fast_rule(env)
    window = 60.0 * rule.short_minutes if rule else 0.0
    if recovered_from is not None:
        if recovery is None:
            print(f"  recovery: NO notification of {TARGET} leaving breaching within "
                  f"{RECOVERY_TIMEOUT:.0f} s of the first successful request accepted -> goal "
                  f"NOT met")
        else:
            arrived, post = recovery
            waited = arrived - recovered_from
            as_of = datetime.fromisoformat(post["details"]["as_of"]).timestamp()
            _, _, last_failed = figures["outage"]
            # The window is counted in whole minutes: the last failure's minute leaves it at
            # that minute's start plus the window, and the rule can clear just after.
            last_minute = datetime.fromtimestamp(last_failed, UTC).replace(second=0,
                                                                           microsecond=0)
            clear = (last_minute + timedelta(seconds=window)).timestamp()
            goal = verdict(waited, window + GOAL_SECONDS)
            print(f"  recovery: breaching -> {post['details']['state']} received {waited:.1f} s "
                  f"after the first successful request was accepted ({goal}: the fast rule's "
                  f"{window / 60:.0f}-minute short window plus {GOAL_SECONDS:.0f} s)")
            print(f"    = {clear - recovered_from:.1f} s until the fast rule's short window "
                  f"held no failed minute (from {datetime.fromtimestamp(clear, UTC):%H:%M:%S}, "
                  f"the last failure's minute + {window / 60:.0f} min; the rules) "
                  f"+ {as_of - clear:.1f} s to the tick that judged it, at its as_of "
                  f"{post['details']['as_of']} (the 30-s sensor interval) "
                  f"+ {arrived - as_of:.1f} s from as_of to arrival (the pipeline; "
                  f"{verdict(arrived - as_of)})")
    print("  notifications (arrival - as_of = the pipeline's latency, goal < "
          f"{GOAL_SECONDS:.0f} s):")
    for arrived, post in sink.posts:
        details = post.get("details", {})
        lag = as_of_lag(arrived, post) if details.get("as_of") else None
        print(f"    post at {datetime.fromtimestamp(arrived, UTC):%H:%M:%S}: "
              f"{details.get('scenario_id')} {details.get('previous_state')} -> "
              f"{details.get('state')} as of {details.get('as_of')}"
              + (f", {lag:.1f} s after it ({verdict(lag)})" if lag is not None else ""))
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
    text = log.read_text(errors="replace") if log.exists() else ""
    tracebacks = text.count("Traceback")
    if tracebacks:
        print(f"  daemon log: {tracebacks} traceback(s); the first:\n"
              + text[text.index("Traceback"):][:4000])
    if (page is None or recovery is None or errors) and text:
        print("  daemon log (tail):\n" + text[-4000:])


if __name__ == "__main__":
    main()
