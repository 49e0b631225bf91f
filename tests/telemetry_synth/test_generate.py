"""The synthetic traffic generator: layout, reproducibility, counts, realism and edge cases."""

import csv
import functools
import gzip
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telemetry_synth import GenerationSummary, generate_landing

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference"
DAY = datetime(2026, 11, 20, tzinfo=UTC)
SEED = 11
FILE_PATTERN = re.compile(
    r"events/date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/gen-s(\d+)-(\d{2})\.jsonl(\.gz)?$"
)
WIRE_PATHS = {
    "id",
    "time",
    "data.baseType",
    "data.cC",
    "data.baseData.operationName",
    "data.baseData.callerName",
    "data.baseData.requestType",
    "data.baseData.latencyMs",
    "data.baseData.requestStatus",
    "data.scScenario",
    "data.scPartner",
    "data.testHeader",
    "data.quoteIsTest",
    "data.isTest",
    "ext.cloud.environment",
    "ext.cloud.roleInstance",
    "ext.sll.libVer",
}


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    assert text == "" or text.endswith("\n"), f"{path} does not end with a newline"
    return text.splitlines()


def landing_files(root: Path) -> list[Path]:
    return sorted(root.glob("events/date=*/hour=*/*.jsonl*"))


def landing_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in landing_files(root)}


def flatten(value: dict, prefix: str = "") -> dict:
    flat = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update(flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def as_event(line: str) -> dict | None:
    """The flattened event if the line meets SPEC §2, else None (a rejected line)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    flat = flatten(value)
    for required in ("id", "time", "data.baseType"):
        if not isinstance(flat.get(required), str):
            return None
    latency = flat.get("data.baseData.latencyMs")
    status = flat.get("data.baseData.requestStatus")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
        return None
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        return None
    return flat


def correlation(flat: dict) -> dict[str, str]:
    pairs = {}
    for item in re.split(r"[;,]", flat.get("data.cC") or ""):
        key, sep, value = item.partition("=")
        if sep:
            pairs[key.strip().lower()] = value.strip()
    return pairs


def scenario_source(flat: dict, allow_list: dict[str, str]) -> tuple[str, str | None]:
    """Where SPEC §3 finds the scenario id, and the id itself."""
    if correlation(flat).get("ms.b.tel.scenario"):
        return "cc", correlation(flat)["ms.b.tel.scenario"]
    if (flat.get("data.scScenario") or "").strip():
        return "sc", flat["data.scScenario"].strip()
    operation = flat.get("data.baseData.operationName")
    if operation in allow_list:
        return "operation", allow_list[operation]
    return "none", None


def partner_source(flat: dict) -> str:
    if correlation(flat).get("ms.b.tel.partner"):
        return "cc"
    if (flat.get("data.scPartner") or "").strip():
        return "sc"
    if (flat.get("data.baseData.callerName") or "").strip():
        return "caller"
    return "unknown"


@functools.cache
def allow_list() -> dict[str, str]:
    with (REFERENCE / "operation_scenarios.csv").open(newline="") as handle:
        return {row["operation_name"]: row["scenario_id"] for row in csv.DictReader(handle)}


class Landing:
    """Every line of a generated landing folder, classified."""

    def __init__(self, root: Path, summary: GenerationSummary) -> None:
        self.root = root
        self.summary = summary
        self.files = landing_files(root)
        self.events: list[tuple[Path, dict]] = []
        self.malformed: list[str] = []
        self.blank = 0
        for path in self.files:
            for line in read_lines(path):
                if line == "":
                    self.blank += 1
                elif (event := as_event(line)) is not None:
                    self.events.append((path, event))
                else:
                    self.malformed.append(line)

    def values(self, wire_path: str) -> Counter:
        return Counter(event.get(wire_path, "<absent>") for _, event in self.events)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Landing:
    root = tmp_path_factory.mktemp("landing")
    summary = generate_landing(
        root,
        REFERENCE,
        DAY,
        DAY + timedelta(days=1),
        events_per_hour=2_000,
        seed=SEED,
        malformed_rate=0.005,
    )
    return Landing(root, summary)


def generate_small(root: Path, seed: int = SEED, **overrides) -> GenerationSummary:
    arguments = {"events_per_hour": 500, "files_per_hour": 3, "gzip_share": 0.5} | overrides
    return generate_landing(
        root,
        REFERENCE,
        DAY + timedelta(hours=9),
        DAY + timedelta(hours=11),
        seed=seed,
        **arguments,
    )


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_small(first)
    generate_small(second)
    generate_small(other, seed=SEED + 1)

    assert landing_bytes(first) == landing_bytes(second)
    assert len(landing_bytes(first)) == 6
    first_lines = {line for path in landing_files(first) for line in read_lines(path)}
    other_lines = {line for path in landing_files(other) for line in read_lines(path)}
    assert len(first_lines & other_lines) < 10  # only blank and canned non-JSON lines repeat


def test_rerun_overwrites_the_same_files(tmp_path: Path) -> None:
    generate_small(tmp_path)
    before = landing_bytes(tmp_path)
    generate_small(tmp_path)

    assert landing_bytes(tmp_path) == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_rerun_with_other_compression_leaves_no_stale_copy(tmp_path: Path) -> None:
    generate_small(tmp_path, gzip_share=0.0)
    plain = landing_bytes(tmp_path)
    generate_small(tmp_path, gzip_share=1.0)

    names = list(landing_bytes(tmp_path))
    assert len(names) == 6 and all(name.endswith(".jsonl.gz") for name in names)
    for name, content in plain.items():
        assert gzip.decompress((tmp_path / (name + ".gz")).read_bytes()) == content


def test_an_hour_is_the_same_whatever_range_generates_it(tmp_path: Path) -> None:
    generate_small(tmp_path / "range")
    generate_landing(
        tmp_path / "single",
        REFERENCE,
        DAY + timedelta(hours=10),
        DAY + timedelta(hours=11),
        events_per_hour=500,
        seed=SEED,
        files_per_hour=3,
    )
    hour_ten = {k: v for k, v in landing_bytes(tmp_path / "range").items() if "hour=10" in k}

    assert hour_ten and landing_bytes(tmp_path / "single") == hour_ten


def test_layout_and_every_event_in_its_folder_hour(day: Landing) -> None:
    assert len(day.files) == 24 * 4 == day.summary.files_written
    assert sorted(day.summary.files) == day.files
    per_hour = Counter()
    for path in day.files:
        match = FILE_PATTERN.search(path.relative_to(day.root).as_posix())
        assert match, path
        assert int(match.group(3)) == SEED
        per_hour[(match.group(1), match.group(2))] += 1
    assert set(per_hour.values()) == {4}

    for path, event in day.events:
        time = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", event["time"])
        assert path.parent.name == f"hour={time:%H}"
        assert path.parent.parent.name == f"date={time:%Y-%m-%d}"


def test_files_mix_gzip_and_plain_and_all_are_readable(day: Landing) -> None:
    suffixes = Counter(path.suffix for path in day.files)
    assert suffixes[".gz"] > 20 and suffixes[".jsonl"] > 20
    for path in day.files:
        if path.suffix == ".gz":
            assert path.read_bytes()[:2] == b"\x1f\x8b"
            assert gzip.decompress(path.read_bytes()).decode().endswith("\n")


def test_counts_match_the_summary(day: Landing) -> None:
    summary = day.summary
    assert len(day.events) == summary.events_written
    assert len(day.malformed) == summary.malformed_lines > 0
    assert day.blank == summary.blank_lines > 0
    ids = Counter(event["id"] for _, event in day.events)
    assert sum(ids.values()) - len(ids) == summary.duplicate_events > 0

    by_hour = Counter(
        datetime.strptime(event["time"][:13], "%Y-%m-%dT%H").replace(tzinfo=UTC)
        for _, event in day.events
    )
    assert by_hour == Counter(summary.events_by_hour)
    assert list(summary.events_by_hour) == [DAY + timedelta(hours=h) for h in range(24)]


def test_events_use_only_the_wire_paths(day: Landing) -> None:
    seen = {path for _, event in day.events for path in event}
    assert seen <= WIRE_PATHS
    assert {"id", "time", "data.baseType", "data.baseData.latencyMs"} <= seen
    for _, event in day.events:
        assert event["data.baseData.latencyMs"] >= 0
        assert event.get("data.baseData.requestStatus", 0) in range(8)


def test_load_follows_the_day_and_averages_events_per_hour(day: Landing) -> None:
    hourly = day.summary.events_by_hour
    mean = (sum(hourly.values()) - day.summary.duplicate_events) / 24
    assert abs(mean - 2_000) < 10
    assert max(hourly, key=hourly.get).hour in (14, 15, 16)
    assert hourly[DAY + timedelta(hours=15)] > 2.5 * hourly[DAY + timedelta(hours=3)]


def test_popularity_latency_and_errors_vary_by_scenario(day: Landing) -> None:
    operations = allow_list()
    by_scenario: dict[str, list[dict]] = {}
    for _, event in day.events:
        _, scenario = scenario_source(event, operations)
        if scenario:
            by_scenario.setdefault(scenario, []).append(event)
    volumes = sorted((len(events) for events in by_scenario.values()), reverse=True)
    assert volumes[0] > 10 * volumes[len(volumes) // 2]

    medians = []
    for events in by_scenario.values():
        if len(events) >= 200:
            latencies = sorted(event["data.baseData.latencyMs"] for event in events)
            medians.append(latencies[len(latencies) // 2])
    assert len(medians) >= 10 and max(medians) > 5 * min(medians)

    failed = sum(event.get("data.baseData.requestStatus", 99) >= 5 for _, event in day.events)
    assert 0.002 < failed / len(day.events) < 0.05


def test_incidents_are_recorded_and_visible_in_the_traffic(day: Landing) -> None:
    incidents = day.summary.incidents
    assert 2 <= len(incidents) <= 8
    operations = allow_list()
    inside = outside = inside_failed = outside_failed = 0
    for incident in incidents:
        assert DAY <= incident.start < incident.end <= DAY + timedelta(days=1)
        assert incident.end - incident.start <= timedelta(minutes=90)
        assert 0.2 <= incident.error_rate <= 0.6
        for _, event in day.events:
            if scenario_source(event, operations)[1] != incident.scenario_id:
                continue
            time = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            failed = event.get("data.baseData.requestStatus", 99) >= 5
            if incident.start <= time < incident.end:
                inside, inside_failed = inside + 1, inside_failed + failed
            else:
                outside, outside_failed = outside + 1, outside_failed + failed
    assert inside >= 20
    assert inside_failed / inside > 0.15 > 0.05 > outside_failed / outside


def test_every_attribution_path_is_present(day: Landing) -> None:
    operations = allow_list()
    scenario_sources = Counter(scenario_source(event, operations)[0] for _, event in day.events)
    partner_sources = Counter(partner_source(event) for _, event in day.events)
    total = len(day.events)

    assert scenario_sources["cc"] / total > 0.8
    for source in ("sc", "operation", "none"):
        assert 0 < scenario_sources[source] / total < 0.1, source
    assert partner_sources["cc"] / total > 0.8
    for source in ("sc", "caller", "unknown"):
        assert 0 < partner_sources[source] / total < 0.1, source

    legacy = [e for _, e in day.events if e["ext.sll.libVer"].startswith("4.")]
    assert legacy and all(scenario_source(e, operations)[0] != "cc" for e in legacy)
    assert any(e.get("data.scScenario") for e in legacy)
    # Legacy clients report whole milliseconds, so the latency field mixes JSON int and float.
    assert all(isinstance(e["data.baseData.latencyMs"], int) for e in legacy)
    assert any(isinstance(e["data.baseData.latencyMs"], float) for _, e in day.events)
    unattributed_operations = {
        e["data.baseData.operationName"]
        for _, e in day.events
        if scenario_source(e, operations)[0] == "none"
    }
    assert unattributed_operations and not unattributed_operations & set(operations)


def test_reference_ids_dominate_and_unknown_ids_are_rare(day: Landing) -> None:
    with (REFERENCE / "scenarios.csv").open(newline="") as handle:
        known_scenarios = {row["scenario_id"] for row in csv.DictReader(handle)}
    with (REFERENCE / "customers.csv").open(newline="") as handle:
        known_partners = {row["partner_id"] for row in csv.DictReader(handle)}
    operations = allow_list()
    scenarios = Counter(scenario_source(event, operations)[1] for _, event in day.events)
    partners = Counter(correlation(event).get("ms.b.tel.partner") for _, event in day.events)
    unknown_scenarios = sum(n for s, n in scenarios.items() if s and s not in known_scenarios)
    unknown_partners = sum(n for p, n in partners.items() if p and p not in known_partners)
    assert 0 < unknown_scenarios < 0.01 * len(day.events)
    assert 0 < unknown_partners < 0.01 * len(day.events)
    assert len({s for s in scenarios if s in known_scenarios}) == len(known_scenarios)


def test_every_filter_edge_case_is_present(day: Landing) -> None:
    environments = day.values("ext.cloud.environment")
    for value in (
        "prod",
        "prod-eu",
        "",
        "<absent>",
        "prod-test",
        "nonprod-eu",
        "dev",
        "ppe",
        "eu-int",
        "svc-perf",
        "NonProd",
        "sandbox",
    ):
        assert environments[value] > 0, value
    assert environments["prod"] / len(day.events) > 0.7

    base_types = day.values("data.baseType")
    for value in (
        "Ms.Qos.IncomingServiceRequest",
        "ms.qos.incomingservicerequest",
        "IncomingServiceRequest",
        "Ms.Qos.OutgoingServiceRequest",
    ):
        assert base_types[value] > 0, value

    assert sum(n for v, n in day.values("data.testHeader").items() if v not in ("", "<absent>"))
    assert day.values("data.testHeader")[""] > 0
    quote = day.values("data.quoteIsTest")
    assert quote["true"] and quote["True"] and quote["false"]
    assert day.values("data.isTest")["true"] and day.values("data.isTest")["false"]

    statuses = day.values("data.baseData.requestStatus")
    assert statuses["<absent>"] and statuses[4] and statuses[5]
    assert statuses[0] / len(day.events) > 0.8
    assert day.values("data.baseData.latencyMs")[0] > 0
    assert day.values("data.cC")["<absent>"] and day.values("data.cC")[""]


def test_correlation_context_variants_are_present(day: Landing) -> None:
    contexts = [event["data.cC"] for _, event in day.events if event.get("data.cC")]
    assert any("MS.B.Tel.Scenario=" in c for c in contexts)
    assert any(" = " in c and c.startswith(" ") for c in contexts)
    assert any(re.search(r"ms\.b\.tel\.scenario=[^;,]+,ms\.b\.tel\.partner=", c) for c in contexts)
    assert any(c.startswith("ms.b.tel.partner=") and "ms.b.tel.scenario=" in c for c in contexts)
    assert any(c.startswith("ms.b.tel.scenario=;") for c in contexts)
    # An empty scenario in cC must fall through to the later sources.
    operations = allow_list()
    fallthrough = [
        scenario_source(event, operations)[0]
        for _, event in day.events
        if (event.get("data.cC") or "").startswith("ms.b.tel.scenario=;")
    ]
    assert {"sc", "operation"} <= set(fallthrough)


def test_duplicates_repeat_the_whole_event_sometimes_in_another_file(day: Landing) -> None:
    seen: dict[str, tuple[Path, dict]] = {}
    cross_file = 0
    for path, event in day.events:
        if event["id"] in seen:
            first_path, first = seen[event["id"]]
            assert first == event
            assert first_path.parent == path.parent
            cross_file += first_path != path
        else:
            seen[event["id"]] = (path, event)
    assert cross_file > 0


def test_every_kind_of_malformed_line_is_present(day: Landing) -> None:
    def parses(line: str) -> dict | None:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            return None
        return flatten(value) if isinstance(value, dict) else {}

    parsed = [(line, parses(line)) for line in day.malformed]
    truncated = [line for line, value in parsed if value is None and line.startswith('{"id"')]
    not_json = [line for line, value in parsed if value is None and not line.startswith('{"id"')]
    assert truncated and not_json
    objects = [value for _, value in parsed if value is not None]
    assert any("id" not in value for value in objects)
    assert any("time" not in value for value in objects)
    assert any("data.baseType" not in value for value in objects)
    assert any(value.get("data.baseData.latencyMs") == "fast" for value in objects)
    assert any(isinstance(value.get("id"), int) for value in objects)
    assert any(value.get("data.baseData.requestStatus") == "OK" for value in objects)


def test_malformed_rate_zero_writes_only_events(tmp_path: Path) -> None:
    summary = generate_small(tmp_path, malformed_rate=0.0)
    landing = Landing(tmp_path, summary)
    assert summary.malformed_lines == summary.blank_lines == 0
    assert not landing.malformed and landing.blank == 0
    assert len(landing.events) == summary.events_written > 0


def test_zero_events_per_hour_writes_empty_files(tmp_path: Path) -> None:
    summary = generate_small(tmp_path, events_per_hour=0)
    assert summary.events_written == 0 and summary.files_written == 6
    assert all(read_lines(path) == [] for path in landing_files(tmp_path))


@pytest.mark.parametrize(
    ("start", "end", "overrides", "message"),
    [
        (DAY, DAY, {}, "after start"),
        (DAY + timedelta(hours=2), DAY, {}, "after start"),
        (DAY + timedelta(minutes=30), DAY + timedelta(hours=2), {}, "whole UTC hour"),
        (DAY, DAY + timedelta(hours=1, seconds=1), {}, "whole UTC hour"),
        (DAY.replace(tzinfo=None), DAY + timedelta(hours=1), {}, "timezone-aware"),
        (DAY, DAY + timedelta(hours=1), {"events_per_hour": -1}, "events_per_hour"),
        (DAY, DAY + timedelta(hours=1), {"files_per_hour": 0}, "files_per_hour"),
        (DAY, DAY + timedelta(hours=1), {"gzip_share": 1.5}, "gzip_share"),
        (DAY, DAY + timedelta(hours=1), {"malformed_rate": -0.1}, "malformed_rate"),
        (DAY, DAY + timedelta(hours=1), {"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_value_error(
    tmp_path: Path, start: datetime, end: datetime, overrides: dict, message: str
) -> None:
    arguments = {"events_per_hour": 10, "seed": SEED} | overrides
    with pytest.raises(ValueError, match=message):
        generate_landing(tmp_path, REFERENCE, start, end, **arguments)
    assert not list(tmp_path.rglob("*.jsonl*"))


def test_missing_reference_file_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"scenarios\.csv"):
        generate_landing(
            tmp_path / "landing", tmp_path, DAY, DAY + timedelta(hours=1), 10, seed=SEED
        )
