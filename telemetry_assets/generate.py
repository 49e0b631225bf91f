"""Synthetic landing files: realistic request telemetry carrying every edge case of the contract."""

import csv
import json
import math
import os
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HOUR = timedelta(hours=1)
MS_PER_HOUR = 3_600_000
# large_string keeps one file's text addressable past 2 GiB at very high volumes.
STR = pa.large_string()

# Share of events with each edge case; each is small enough to leave the headline numbers
# realistic and large enough to show up in a few thousand events.
DUPLICATE_RATE = 0.005
ZERO_LATENCY_RATE = 0.002
# A missing status counts as a failure: rare enough not to eat a 99.95 % error budget alone.
MISSING_STATUS_RATE = 0.0002
UNKNOWN_SCENARIO_RATE = 0.001
UNKNOWN_PARTNER_RATE = 0.002
INCIDENTS_PER_DAY = 3
INSTANCES_PER_SERVICE = 12

BASE_TYPES = (
    ("Ms.Qos.IncomingServiceRequest", 0.985),
    ("ms.qos.incomingservicerequest", 0.003),
    ("IncomingServiceRequest", 0.003),
    ("MS.QOS.INCOMINGSERVICEREQUEST", 0.001),
    (" Ms.Qos.IncomingServiceRequest ", 0.001),
    ("Ms.Qos.OutgoingServiceRequest", 0.005),
    ("Ms.Qos.ExceptionEvent", 0.002),
)
# None means the field is absent; "" means present and empty, which the contract treats alike.
ENVIRONMENTS = (
    ("prod", 0.784),
    ("prod-eu", 0.10),
    ("prod-us", 0.08),
    ("PROD", 0.003),
    ("", 0.004),
    (None, 0.004),
    ("prod-test", 0.003),
    ("nonprod-eu", 0.003),
    (" Prod ", 0.002),
    ("dev", 0.003),
    ("ppe", 0.003),
    ("eu-int", 0.002),
    ("svc-perf", 0.002),
    ("NonProd", 0.002),
    ("sandbox", 0.002),
    ("int", 0.001),
    ("test", 0.001),
    ("non-prod", 0.001),
)
TEST_HEADERS = (
    (None, 0.93),
    ("", 0.065),
    ("synthetic-monitor", 0.003),
    ("loadtest-7", 0.002),
)
QUOTE_IS_TEST = (
    (None, 0.90),
    ("", 0.05),
    ("false", 0.045),
    ("true", 0.002),
    ("True", 0.002),
    ("TRUE", 0.001),
)
IS_TEST = ((None, 0.92), ("", 0.03), ("false", 0.047), ("true", 0.003))
MODERN_LIB_VERSIONS = ("5.0.2", "5.2.1", "5.3.0", "6.0.1")
LEGACY_LIB_VERSIONS = ("4.2.0", "4.6.3", "4.8.1")
REQUEST_TYPES = ("GET", "POST", "PUT", "DELETE", "Read", "Write")
SUCCESS_STATUS_P = (0.90, 0.05, 0.03, 0.015, 0.005)  # statuses 0-4
FAILURE_STATUS_P = (0.5, 0.3, 0.2)  # statuses 5-7
MISSING_STATUS = 8
GATEWAY_CALLERS = ("edge-gateway", "storefront-web", "mobile-app-ios", "partner-api")
UNATTRIBUTED_OPERATIONS = ("HealthCheck", "GetMetrics", "Ping", "GetConfig", "PostTelemetry")
UNKNOWN_SCENARIOS = ("checkout.express_pay", "labs.preview_feature", "search.semantic_beta")
UNKNOWN_PARTNERS = ("trial-4f1c", "unregistered-reseller", "acme-onboarding")
UNKNOWN_SCENARIO_OPERATION = "PostPreviewFeature"
NOT_JSON_LINES = (
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "ERROR connection reset by peer while flushing telemetry batch",
    "{'id': 'python-repr', 'time': None}",
    "id,time,data.baseType",
)

# How an event names its scenario and partner (SPEC §3 precedence is cC, then sc*, then the
# operation allow-list or callerName).
MODE_CC, MODE_LEGACY, MODE_OP_ONLY, MODE_CALLER_PARTNER = 0, 1, 2, 3
MODE_NO_PARTNER, MODE_UNATTRIBUTED, MODE_EMPTY_CC_SCENARIO = 4, 5, 6
MODE_P = (0.835, 0.07, 0.05, 0.03, 0.003, 0.006, 0.006)

# Correlation-context templates: head + first value + mid + second value + tail, where a value
# is 0 (none), 1 (scenario) or 2 (partner).
CC_TEMPLATES = (
    ("", "", "", 0, 0),  # absent
    (',"cC":"', "", '"', 0, 0),  # empty
    (',"cC":"ms.b.tel.scenario=', ";ms.b.tel.partner=", '"', 1, 2),
    (
        ',"cC":"ms.b.tel.market=en-US;ms.b.tel.scenario=',
        ";ms.b.tel.partner=",
        ';ms.b.tel.flight=ring1"',
        1,
        2,
    ),
    (',"cC":"MS.B.Tel.Scenario=', ";Ms.b.TEL.partner=", '"', 1, 2),
    (',"cC":" ms.b.tel.scenario = ', " ; ms.b.tel.partner = ", ' "', 1, 2),
    (',"cC":"ms.b.tel.scenario=', ",ms.b.tel.partner=", '"', 1, 2),
    (',"cC":"ms.b.tel.partner=', ";ms.b.tel.scenario=", '"', 2, 1),
    (',"cC":"ms.b.tel.scenario=', ";ms.b.tel.partner=", ';"', 1, 2),
    (',"cC":"ms.b.tel.scenario=', "", '"', 1, 0),
    (',"cC":"ms.b.tel.partner=', "", '"', 2, 0),
    (',"cC":"ms.b.qos.rootActivityId=4bf92f35;ms.b.tel.market=en-US"', "", "", 0, 0),
    (',"cC":"ms.b.tel.scenario=;ms.b.tel.partner=', "", '"', 2, 0),
)
CC_ABSENT, CC_EMPTY, CC_STANDARD = 0, 1, 2
CC_SCENARIO_ONLY, CC_PARTNER_ONLY, CC_NON_TELEMETRY, CC_EMPTY_SCENARIO = 9, 10, 11, 12
# Templates 2-8 all carry both ids; the non-standard ones exercise the parsing rules.
CC_BOTH_P = (0.965, 0.02, 0.003, 0.003, 0.003, 0.003, 0.003)

KIND_EVENT, KIND_BLANK = 0, 9
KIND_NOT_JSON, KIND_TRUNCATED, KIND_MISSING_ID, KIND_MISSING_TIME = 1, 2, 3, 4
KIND_MISSING_BASE_TYPE, KIND_LATENCY_STRING, KIND_ID_NUMBER, KIND_STATUS_STRING = 5, 6, 7, 8
MALFORMED_KINDS = np.arange(1, 9, dtype=np.int8)
# Regex surgery on a rendered line; every rendered line matches each pattern exactly once.
MALFORMED_REWRITES = {
    KIND_MISSING_ID: (r'^\{"id":"[^"]*",', "{"),
    KIND_MISSING_TIME: (r'"time":"[^"]*",', ""),
    KIND_MISSING_BASE_TYPE: (r'"baseType":"[^"]*",', ""),
    KIND_LATENCY_STRING: (r'"latencyMs":[0-9.]+', '"latencyMs":"fast"'),
    KIND_ID_NUMBER: (r'^\{"id":"[^"]*"', '{"id":40217'),
    KIND_STATUS_STRING: (r'"requestStatus":[0-9]+', '"requestStatus":"OK"'),
}
# Every cut is shorter than the shortest line the renderer can produce (about 260
# characters), so a truncated line is never a complete event by accident.
TRUNCATE_AT = (31, 87, 124, 160)


@dataclass(frozen=True)
class Incident:
    """A window in which one scenario fails far more often and answers more slowly."""

    scenario_id: str
    start: datetime
    end: datetime
    error_rate: float
    latency_factor: float


@dataclass(frozen=True)
class GenerationSummary:
    """What one `generate_landing` call wrote."""

    events_written: int
    duplicate_events: int
    malformed_lines: int
    blank_lines: int
    files_written: int
    incidents: list[Incident]
    events_by_hour: dict[datetime, int]
    files: list[Path]


def generate_landing(
    landing_dir: Path,
    reference_dir: Path,
    start: datetime,
    end: datetime,
    events_per_hour: int,
    seed: int,
    files_per_hour: int = 4,
    gzip_share: float = 0.5,
    malformed_rate: float = 0.001,
) -> GenerationSummary:
    """Write synthetic landing files for every hour of [start, end) and summarise them."""
    start, end = _check_window(start, end)
    _check_arguments(events_per_hour, seed, files_per_hour, gzip_share, malformed_rate)
    model = _Model.build(Path(reference_dir), seed)
    landing_dir = Path(landing_dir)

    hours = []
    hour = start
    while hour < end:
        hours.append(hour)
        hour += HOUR

    events_by_hour: dict[datetime, int] = {}
    files: list[Path] = []
    duplicates = malformed = blanks = 0
    # Rendering and compression release the GIL, so the next hour is drawn while the
    # previous hour's files are written; waiting one hour behind bounds memory.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        pending: list[Future[Path]] = []
        for hour in hours:
            count = round(events_per_hour * _diurnal_factor(hour.hour))
            rows = _draw_hour(model, seed, hour, count, files_per_hour, gzip_share, malformed_rate)
            for future in pending:
                files.append(future.result())
            pending = _submit_hour(pool, model, landing_dir, seed, hour, rows)
            kinds = rows.columns["kind"]
            events_by_hour[hour] = int(np.count_nonzero(kinds == KIND_EVENT))
            duplicates += rows.duplicates
            blanks += int(np.count_nonzero(kinds == KIND_BLANK))
            malformed += int(np.count_nonzero((kinds != KIND_EVENT) & (kinds != KIND_BLANK)))
        for future in pending:
            files.append(future.result())

    return GenerationSummary(
        events_written=sum(events_by_hour.values()),
        duplicate_events=duplicates,
        malformed_lines=malformed,
        blank_lines=blanks,
        files_written=len(files),
        incidents=model.incidents_between(start, end),
        events_by_hour=events_by_hour,
        files=files,
    )


def _check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
        if value.astimezone(UTC).replace(minute=0, second=0, microsecond=0) != value:
            raise ValueError(f"{name} must be aligned to a whole UTC hour, got {value.isoformat()}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    return start, end


def _check_arguments(
    events_per_hour: int, seed: int, files_per_hour: int, gzip_share: float, malformed_rate: float
) -> None:
    if not isinstance(events_per_hour, int | np.integer) or events_per_hour < 0:
        raise ValueError(f"events_per_hour must be an integer >= 0, got {events_per_hour!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(files_per_hour, int | np.integer) or files_per_hour < 1:
        raise ValueError(f"files_per_hour must be an integer >= 1, got {files_per_hour!r}")
    if not 0.0 <= gzip_share <= 1.0:
        raise ValueError(f"gzip_share must be within [0, 1], got {gzip_share!r}")
    if not 0.0 <= malformed_rate <= 0.5:
        raise ValueError(f"malformed_rate must be within [0, 0.5], got {malformed_rate!r}")


def _diurnal_factor(hour_of_day: int) -> float:
    """Load relative to the daily mean: 1.5 at 15:00 UTC, 0.5 at 03:00, averaging exactly 1."""
    return 1.0 + 0.5 * math.cos(2.0 * math.pi * (hour_of_day - 15) / 24.0)


def _json_text(value: str) -> str:
    """The body of a JSON string literal, so reference ids with quotes still give valid lines."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValueError(f"reference file {path} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(columns) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}")
        return [{key: (row[key] or "").strip() for key in columns} for row in reader]


def _float_or(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def _camel_case(scenario_id: str) -> str:
    words = scenario_id.rsplit(".", 1)[-1].replace("-", "_").split("_")
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def _probabilities(weighted: Sequence[tuple[object, float]]) -> np.ndarray:
    weights = np.array([weight for _, weight in weighted], dtype=np.float64)
    return weights / weights.sum()


def _fragments(
    key: str, weighted: Sequence[tuple[str | None, float]], trail: str = ""
) -> list[str]:
    """JSON text for each value of a small optional string field: absent, or `"key":"value"`."""
    return [
        "" if value is None else f'"{key}":"{_json_text(value)}"{trail}' for value, _ in weighted
    ]


@dataclass
class _Model:
    """Reference ids, per-scenario behaviour and the string vocabularies one seed draws from."""

    seed: int
    scenario_ids: list[str]
    scenario_p: np.ndarray
    partner_p: np.ndarray
    scenario_service: np.ndarray
    latency_median_ms: np.ndarray
    latency_sigma: np.ndarray
    error_rate: np.ndarray
    request_type: np.ndarray
    operation_table: np.ndarray
    operation_count: np.ndarray
    has_listed_operation: np.ndarray
    tokens: pa.Array
    token_scenario: int
    token_unknown_scenario: int
    token_partner: int
    token_unknown_partner: int
    token_gateway: int
    token_unattributed_operation: int
    token_unknown_scenario_operation: int
    token_empty: int
    n_unknown_scenarios: int
    n_unknown_partners: int
    role_vocab: pa.Array
    popular_scenarios: np.ndarray

    @classmethod
    def build(cls, reference_dir: Path, seed: int) -> "_Model":
        scenarios = _read_csv(
            reference_dir / "scenarios.csv", ("scenario_id", "service", "slo_target_pct")
        )
        customers = _read_csv(reference_dir / "customers.csv", ("partner_id", "tier"))
        operations = _read_csv(
            reference_dir / "operation_scenarios.csv", ("operation_name", "scenario_id")
        )
        scenario_ids = [row["scenario_id"] for row in scenarios if row["scenario_id"]]
        partner_ids = [row["partner_id"] for row in customers if row["partner_id"]]
        if not scenario_ids or not partner_ids:
            raise ValueError(f"{reference_dir} needs at least one scenario and one partner")
        services = sorted({row["service"] or "unknown" for row in scenarios if row["scenario_id"]})
        scenario_service = np.array(
            [services.index(row["service"] or "unknown") for row in scenarios if row["scenario_id"]]
        )

        # Static behaviour comes from its own stream so it is the same for every hour drawn.
        rng = np.random.default_rng([seed, 0])
        n_scen, n_part = len(scenario_ids), len(partner_ids)
        scenario_rank = rng.permutation(n_scen)
        scenario_p = 1.0 / (scenario_rank + 1.0) ** 1.1
        scenario_p /= scenario_p.sum()
        # Bigger contracts send more traffic, so popularity follows tier, shuffled within it.
        tier_order = {"platinum": 0, "gold": 1, "silver": 2, "bronze": 3}
        tiers = [tier_order.get(row["tier"].lower(), 4) for row in customers if row["partner_id"]]
        partner_rank = np.empty(n_part, dtype=np.int64)
        partner_rank[np.lexsort((rng.random(n_part), tiers))] = np.arange(n_part)
        partner_p = 1.0 / (partner_rank + 1.0)
        partner_p /= partner_p.sum()
        latency_median_ms = np.exp(rng.uniform(math.log(8.0), math.log(350.0), n_scen))
        latency_sigma = rng.uniform(0.35, 0.8, n_scen)
        # Most scenarios spend a fraction of their error budget (100 - SLO target) on a normal
        # day; about one in eight runs hot, over budget, so the demo has something to show.
        budget = np.array([
            (100.0 - _float_or(row.get("slo_target_pct"), 99.9)) / 100.0
            for row in scenarios if row["scenario_id"]
        ]).clip(min=0.0001)
        spend = np.where(rng.random(n_scen) < 0.125, rng.uniform(1.2, 3.0, n_scen),
                         rng.uniform(0.05, 0.6, n_scen))
        error_rate = budget * spend

        listed = [row for row in operations if row["operation_name"] and row["scenario_id"]]
        listed_names = {row["operation_name"] for row in listed}
        operations_of: dict[str, list[str]] = {sid: [] for sid in scenario_ids}
        for row in listed:
            if row["scenario_id"] in operations_of:
                operations_of[row["scenario_id"]].append(row["operation_name"])

        def unlisted(name: str) -> str:
            while name in listed_names:
                name = "Invoke" + name
            return name

        own_operations = [
            operations_of[sid] or [unlisted(_camel_case(sid) or "Invoke")] for sid in scenario_ids
        ]
        unknown_scenarios = [s for s in UNKNOWN_SCENARIOS if s not in set(scenario_ids)]
        unknown_partners = [p for p in UNKNOWN_PARTNERS if p not in set(partner_ids)]
        unattributed = [unlisted(name) for name in UNATTRIBUTED_OPERATIONS]

        vocab: list[str] = []

        def add(values: Sequence[str]) -> int:
            vocab.extend(_json_text(value) for value in values)
            return len(vocab) - len(values)

        token_scenario = add(scenario_ids)
        token_unknown_scenario = add(unknown_scenarios)
        token_partner = add(partner_ids)
        token_unknown_partner = add(unknown_partners)
        token_gateway = add(GATEWAY_CALLERS)
        token_unattributed_operation = add(unattributed)
        token_unknown_scenario_operation = add([unlisted(UNKNOWN_SCENARIO_OPERATION)])
        token_empty = add([""])
        operation_names = sorted({name for names in own_operations for name in names})
        token_operation = add(operation_names)
        width = max(len(names) for names in own_operations)
        operation_table = np.zeros((n_scen, width), dtype=np.int32)
        for index, names in enumerate(own_operations):
            for slot, name in enumerate(names):
                operation_table[index, slot] = token_operation + operation_names.index(name)

        def verb(name: str) -> int:
            for code, prefix in ((0, "Get"), (0, "List"), (2, "Put"), (3, "Delete")):
                if name.startswith(prefix):
                    return code
            return 1

        roles = [
            f"{_json_text(service)}-fe_IN_{instance}"
            for service in services
            for instance in range(INSTANCES_PER_SERVICE)
        ]
        return cls(
            seed=seed,
            scenario_ids=scenario_ids,
            scenario_p=scenario_p,
            partner_p=partner_p,
            scenario_service=scenario_service,
            latency_median_ms=latency_median_ms,
            latency_sigma=latency_sigma,
            error_rate=error_rate,
            request_type=np.array([verb(names[0]) for names in own_operations], dtype=np.int8),
            operation_table=operation_table,
            operation_count=np.array([len(names) for names in own_operations]),
            has_listed_operation=np.array([bool(operations_of[sid]) for sid in scenario_ids]),
            tokens=pa.array(vocab, type=STR),
            token_scenario=token_scenario,
            token_unknown_scenario=token_unknown_scenario,
            token_partner=token_partner,
            token_unknown_partner=token_unknown_partner,
            token_gateway=token_gateway,
            token_unattributed_operation=token_unattributed_operation,
            token_unknown_scenario_operation=token_unknown_scenario_operation,
            token_empty=token_empty,
            n_unknown_scenarios=len(unknown_scenarios),
            n_unknown_partners=len(unknown_partners),
            role_vocab=pa.array(roles, type=STR),
            popular_scenarios=np.argsort(scenario_rank)[:15],
        )

    def incidents_on(self, day: datetime) -> list[tuple[int, Incident]]:
        """The incidents that start on `day`, each with its scenario index."""
        day_index = int(day.timestamp() // 86_400)
        # Keyed by day rather than by the requested range so any sub-range regenerates the
        # same traffic, incidents included.
        rng = np.random.default_rng([self.seed, 2, day_index])
        found = []
        for _ in range(INCIDENTS_PER_DAY):
            scenario = int(rng.choice(self.popular_scenarios))
            start = day + timedelta(minutes=int(rng.integers(0, 24 * 60)))
            end = start + timedelta(minutes=int(rng.integers(20, 91)))
            incident = Incident(
                scenario_id=self.scenario_ids[scenario],
                start=start,
                end=end,
                error_rate=round(float(rng.uniform(0.2, 0.6)), 3),
                latency_factor=round(float(rng.uniform(2.0, 5.0)), 2),
            )
            found.append((scenario, incident))
        return found

    def incidents_touching(self, start: datetime, end: datetime) -> list[tuple[int, Incident]]:
        """Incidents overlapping [start, end), including ones that began the day before."""
        day = start.replace(hour=0) - timedelta(days=1)
        found = []
        while day < end:
            found.extend(
                (scenario, incident)
                for scenario, incident in self.incidents_on(day)
                if incident.start < end and incident.end > start
            )
            day += timedelta(days=1)
        return sorted(found, key=lambda item: (item[1].start, item[1].scenario_id))

    def incidents_between(self, start: datetime, end: datetime) -> list[Incident]:
        """Incidents overlapping [start, end), clipped to it."""
        return [
            Incident(
                scenario_id=incident.scenario_id,
                start=max(incident.start, start),
                end=min(incident.end, end),
                error_rate=incident.error_rate,
                latency_factor=incident.latency_factor,
            )
            for _, incident in self.incidents_touching(start, end)
        ]


@dataclass
class _HourRows:
    """Every line of one hour as integer codes, sorted by file then event time."""

    hour: datetime
    columns: dict[str, np.ndarray]
    file_bounds: np.ndarray
    gzipped: np.ndarray
    duplicates: int


def _pick(rng: np.random.Generator, weighted: Sequence[tuple[object, float]], n: int) -> np.ndarray:
    return rng.choice(len(weighted), size=n, p=_probabilities(weighted)).astype(np.int8)


def _draw_hour(
    model: _Model,
    seed: int,
    hour: datetime,
    count: int,
    files_per_hour: int,
    gzip_share: float,
    malformed_rate: float,
) -> _HourRows:
    """Draw one hour's events, duplicates, malformed and blank lines as integer codes."""
    rng = np.random.default_rng([seed, 1, int(hour.timestamp() // 3600)])
    gzipped = rng.random(files_per_hour) < gzip_share
    n_malformed = int(rng.binomial(count, malformed_rate))
    n_blank = int(rng.binomial(count, malformed_rate / 2))
    n = count + n_malformed + n_blank

    kind = np.zeros(n, dtype=np.int8)
    kind[count : count + n_malformed] = rng.choice(MALFORMED_KINDS, n_malformed)
    kind[count + n_malformed :] = KIND_BLANK

    scenario = rng.choice(len(model.scenario_ids), size=n, p=model.scenario_p)
    partner = rng.choice(len(model.partner_p), size=n, p=model.partner_p)
    t_ms = rng.integers(0, MS_PER_HOUR, n, dtype=np.int32)

    scenario_token = (model.token_scenario + scenario).astype(np.int32)
    unknown_scenario = rng.random(n) < UNKNOWN_SCENARIO_RATE
    if model.n_unknown_scenarios:
        scenario_token[unknown_scenario] = model.token_unknown_scenario + rng.integers(
            0, model.n_unknown_scenarios, int(unknown_scenario.sum())
        )
    else:
        unknown_scenario[:] = False
    partner_token = (model.token_partner + partner).astype(np.int32)
    if model.n_unknown_partners:
        unknown_partner = rng.random(n) < UNKNOWN_PARTNER_RATE
        partner_token[unknown_partner] = model.token_unknown_partner + rng.integers(
            0, model.n_unknown_partners, int(unknown_partner.sum())
        )

    mode = rng.choice(len(MODE_P), size=n, p=MODE_P).astype(np.int8)
    # The allow-list can only attribute scenarios it lists.
    needs_listed = (mode == MODE_OP_ONLY) | (mode == MODE_EMPTY_CC_SCENARIO)
    mode[needs_listed & (~model.has_listed_operation[scenario] | unknown_scenario)] = MODE_CC
    legacy = mode == MODE_LEGACY
    # Two independent uniforms choose the sub-variant within each attribution mode.
    split = rng.random(n)
    sub = rng.random(n)

    cc = np.full(n, CC_STANDARD, dtype=np.int8)
    is_cc = mode == MODE_CC
    cc[is_cc] = CC_STANDARD + rng.choice(len(CC_BOTH_P), int(is_cc.sum()), p=CC_BOTH_P)
    cc[legacy] = np.where(split[legacy] < 0.5, CC_ABSENT, CC_EMPTY)
    cc[legacy & (split >= 0.8)] = CC_NON_TELEMETRY
    op_only = mode == MODE_OP_ONLY
    cc[op_only] = np.where(split[op_only] < 0.5, CC_ABSENT, CC_PARTNER_ONLY)
    cc[(mode == MODE_CALLER_PARTNER) | (mode == MODE_NO_PARTNER)] = CC_SCENARIO_ONLY
    unattributed = mode == MODE_UNATTRIBUTED
    cc[unattributed] = np.select(
        [split[unattributed] < 0.6, split[unattributed] < 0.8],
        [CC_ABSENT, CC_NON_TELEMETRY],
        CC_PARTNER_ONLY,
    )
    cc[mode == MODE_EMPTY_CC_SCENARIO] = CC_EMPTY_SCENARIO

    first_value = np.array([t[3] for t in CC_TEMPLATES], dtype=np.int8)[cc]
    second_value = np.array([t[4] for t in CC_TEMPLATES], dtype=np.int8)[cc]
    empty = np.int32(model.token_empty)

    def value_tokens(which: np.ndarray) -> np.ndarray:
        return np.select([which == 1, which == 2], [scenario_token, partner_token], empty)

    # sc fields: 0 absent, 1 carrying the id, 2 present but empty.
    sc_scenario = np.zeros(n, dtype=np.int8)
    sc_partner = np.zeros(n, dtype=np.int8)
    sc_scenario[legacy] = 1
    sc_partner[legacy] = np.where(sub[legacy] < 0.8, 1, 2)
    empty_cc_scenario = mode == MODE_EMPTY_CC_SCENARIO
    sc_scenario[empty_cc_scenario & (sub < 0.5)] = 1
    modern_with_empty_sc = is_cc & (rng.random(n) < 0.03)
    sc_scenario[modern_with_empty_sc] = 2
    sc_partner[modern_with_empty_sc] = 2

    # callerName: 0 absent, 1 the partner id, 2 a gateway that must not win over the partner.
    caller = np.where(rng.random(n) < 0.5, 2, 0).astype(np.int8)
    caller[legacy & (sc_partner == 2)] = 1
    caller[op_only & (cc == CC_ABSENT)] = 1
    caller[mode == MODE_CALLER_PARTNER] = 1
    caller[mode == MODE_NO_PARTNER] = 0
    caller[unattributed] = np.where(sub[unattributed] < 0.5, 1, 0)
    caller_token = np.where(
        caller == 1,
        partner_token,
        model.token_gateway + rng.integers(0, len(GATEWAY_CALLERS), n),
    ).astype(np.int32)
    caller_token[caller == 0] = empty

    slot = (rng.random(n) * model.operation_count[scenario]).astype(np.int64)
    operation = model.operation_table[scenario, slot]
    operation[unknown_scenario] = model.token_unknown_scenario_operation
    operation[unattributed] = model.token_unattributed_operation + rng.integers(
        0, len(UNATTRIBUTED_OPERATIONS), int(unattributed.sum())
    )
    # Legacy clients report Read/Write rather than HTTP verbs.
    request_type = model.request_type[scenario].copy()
    request_type[legacy] = np.where(request_type[legacy] == 0, 4, 5)

    error_p = model.error_rate[scenario].copy()
    latency_factor = np.ones(n)
    for index, incident in model.incidents_touching(hour, hour + HOUR):
        lo = max(0, int((incident.start - hour).total_seconds() * 1000))
        hi = min(MS_PER_HOUR, int((incident.end - hour).total_seconds() * 1000))
        hit = (scenario == index) & (t_ms >= lo) & (t_ms < hi)
        error_p[hit] = incident.error_rate
        latency_factor[hit] = incident.latency_factor
    failed = rng.random(n) < error_p
    status = np.where(
        failed,
        5 + rng.choice(3, size=n, p=FAILURE_STATUS_P),
        rng.choice(5, size=n, p=SUCCESS_STATUS_P),
    ).astype(np.int8)
    status[rng.random(n) < MISSING_STATUS_RATE] = MISSING_STATUS

    latency_ms = (
        model.latency_median_ms[scenario]
        * np.exp(model.latency_sigma[scenario] * rng.standard_normal(n))
        * latency_factor
    )
    # Failures split between fast rejections and slow timeouts, so they widen both tails.
    latency_ms[failed] *= np.exp(rng.normal(0.2, 0.9, int(failed.sum())))
    latency_us = np.clip(np.rint(latency_ms * 1000.0), 50, 60_000_000).astype(np.int64)
    latency_us[legacy] = np.rint(latency_us[legacy] / 1000.0).astype(np.int64) * 1000
    latency_us[rng.random(n) < ZERO_LATENCY_RATE] = 0

    columns = {
        "kind": kind,
        "id": np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16),
        "t_ms": t_ms,
        "base_type": _pick(rng, BASE_TYPES, n),
        "cc": cc,
        "first": value_tokens(first_value).astype(np.int32),
        "second": value_tokens(second_value).astype(np.int32),
        "operation": operation.astype(np.int32),
        "caller": caller,
        "caller_token": caller_token,
        "request_type": request_type,
        "latency_us": latency_us,
        "latency_fraction": ~legacy & (latency_us > 0),
        "status": status,
        "sc_scenario": sc_scenario,
        "sc_scenario_token": np.where(sc_scenario == 1, scenario_token, empty).astype(np.int32),
        "sc_partner": sc_partner,
        "sc_partner_token": np.where(sc_partner == 1, partner_token, empty).astype(np.int32),
        "test_header": _pick(rng, TEST_HEADERS, n),
        "quote_is_test": _pick(rng, QUOTE_IS_TEST, n),
        "is_test": _pick(rng, IS_TEST, n),
        "environment": _pick(rng, ENVIRONMENTS, n),
        "role": (
            model.scenario_service[scenario] * INSTANCES_PER_SERVICE
            + rng.integers(0, INSTANCES_PER_SERVICE, n)
        ).astype(np.int32),
        "lib_version": np.where(
            legacy,
            len(MODERN_LIB_VERSIONS) + rng.integers(0, len(LEGACY_LIB_VERSIONS), n),
            rng.choice(len(MODERN_LIB_VERSIONS), n, p=(0.1, 0.5, 0.3, 0.1)),
        ).astype(np.int8),
        "aux": rng.integers(0, 1 << 15, n, dtype=np.int32),
    }
    # The status rewrite needs a status to rewrite.
    columns["status"][(kind == KIND_STATUS_STRING) & (status == MISSING_STATUS)] = 0

    n_duplicates = int(rng.binomial(count, DUPLICATE_RATE)) if count else 0
    source = rng.integers(0, count, n_duplicates) if n_duplicates else np.zeros(0, np.int64)
    if n_duplicates:
        columns = {
            name: np.concatenate([values, values[source]]) for name, values in columns.items()
        }
    total = n + n_duplicates
    file_index = rng.integers(0, files_per_hour, total)
    order = np.lexsort((columns["t_ms"], file_index))
    columns = {name: values[order] for name, values in columns.items()}
    file_bounds = np.searchsorted(file_index[order], np.arange(files_per_hour + 1))
    return _HourRows(hour, columns, file_bounds, gzipped, n_duplicates)


def _submit_hour(
    pool: ThreadPoolExecutor,
    model: _Model,
    landing_dir: Path,
    seed: int,
    hour: datetime,
    rows: _HourRows,
) -> list[Future[Path]]:
    """Queue one file per slot of the hour and clear this seed's stale files from the folder."""
    folder = landing_dir / "events" / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    targets = []
    futures = []
    for index, gzipped in enumerate(rows.gzipped):
        path = folder / f"gen-s{seed}-{index:02d}.jsonl{'.gz' if gzipped else ''}"
        targets.append(path.name)
        lo, hi = rows.file_bounds[index], rows.file_bounds[index + 1]
        part = {name: values[lo:hi] for name, values in rows.columns.items()}
        futures.append(pool.submit(_write_file, model, hour, part, path, bool(gzipped)))
    # A rerun with another gzip_share or fewer files per hour must not leave the old copy of
    # this seed's traffic behind, or the hour would be counted twice.
    for stale in folder.glob(f"gen-s{seed}-*.jsonl*"):
        if stale.name not in targets and stale.name.endswith((".jsonl", ".jsonl.gz")):
            stale.unlink()
    return futures


def _write_file(
    model: _Model, hour: datetime, columns: dict[str, np.ndarray], path: Path, gzipped: bool
) -> Path:
    """Render and atomically replace one landing file."""
    payload = _payload(_render(model, hour, columns))
    if gzipped:
        # Raw zlib with a gzip wrapper (wbits=31) stamps no mtime or file name, so the
        # bytes depend on the content alone.
        payload = zlib.compress(payload, 1, wbits=31)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        handle.write(payload)
    os.replace(temporary, path)
    return path


def _payload(lines: pa.Array) -> memoryview:
    """The concatenated text of a string array whose every element ends in a newline."""
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[first:last]


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    """An Arrow string array over the rows of an ASCII byte matrix, without per-row copies."""
    rows, width = matrix.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64)
    data = np.ascontiguousarray(matrix)
    return pa.Array.from_buffers(STR, rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
UUID_DIGITS = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]


def _uuids(raw: np.ndarray) -> pa.Array:
    nibbles = np.empty((len(raw), 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 15
    nibbles[:, 12] = 4  # version 4: random
    nibbles[:, 16] = 8 | (nibbles[:, 16] & 3)
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    text[:, UUID_DIGITS] = HEX[nibbles]
    return _fixed_width(text)


def _timestamps(hour: datetime, t_ms: np.ndarray) -> pa.Array:
    text = np.empty((len(t_ms), 24), dtype=np.uint8)
    text[:, :14] = np.frombuffer(f"{hour:%Y-%m-%dT%H}:".encode(), dtype=np.uint8)
    zero = ord("0")
    minute, second, milli = t_ms // 60_000, t_ms // 1000 % 60, t_ms % 1000
    for column, digits in (
        (14, minute // 10),
        (15, minute % 10),
        (17, second // 10),
        (18, second % 10),
        (20, milli // 100),
        (21, milli // 10 % 10),
        (22, milli % 10),
    ):
        text[:, column] = zero + digits
    text[:, 16], text[:, 19], text[:, 23] = ord(":"), ord("."), ord("Z")
    return _fixed_width(text)


def _latencies(latency_us: np.ndarray, fraction: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Whole milliseconds, and `.ddd` where the client reports sub-millisecond precision."""
    whole = pc.cast(pa.array(latency_us // 1000), STR)
    micros = latency_us % 1000
    text = np.empty((len(latency_us), 4), dtype=np.uint8)
    text[:, 0] = ord(".")
    text[:, 1] = ord("0") + micros // 100
    text[:, 2] = ord("0") + micros // 10 % 10
    text[:, 3] = ord("0") + micros % 10
    return whole, pc.if_else(pa.array(fraction), _fixed_width(text), pa.scalar("", STR))


def _vocab(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=STR)


BASE_TYPE_VOCAB = _vocab(_json_text(value) for value, _ in BASE_TYPES)
CC_HEAD, CC_MID, CC_TAIL = (_vocab(t[i] for t in CC_TEMPLATES) for i in range(3))
CALLER_HEAD = _vocab(["", ',"callerName":"', ',"callerName":"'])
SC_SCENARIO_HEAD = _vocab(["", ',"scScenario":"', ',"scScenario":"'])
SC_PARTNER_HEAD = _vocab(["", ',"scPartner":"', ',"scPartner":"'])
CLOSE_IF_PRESENT = _vocab(["", '"', '"'])
REQUEST_TYPE_VOCAB = _vocab(REQUEST_TYPES)
STATUS_VOCAB = _vocab([f',"requestStatus":{code}' for code in range(8)] + [""])
TEST_HEADER_VOCAB = _vocab("," + f if f else "" for f in _fragments("testHeader", TEST_HEADERS))
QUOTE_IS_TEST_VOCAB = _vocab("," + f if f else "" for f in _fragments("quoteIsTest", QUOTE_IS_TEST))
IS_TEST_VOCAB = _vocab("," + f if f else "" for f in _fragments("isTest", IS_TEST))
ENVIRONMENT_VOCAB = _vocab(_fragments("environment", ENVIRONMENTS, trail=","))
LIB_VERSION_VOCAB = _vocab(MODERN_LIB_VERSIONS + LEGACY_LIB_VERSIONS)
NOT_JSON_VOCAB = _vocab(line + "\n" for line in NOT_JSON_LINES)


def _render(model: _Model, hour: datetime, columns: dict[str, np.ndarray]) -> pa.Array:
    """Every line of one file as newline-terminated text, malformed and blank ones included."""

    def text(vocab: pa.Array, codes: np.ndarray) -> pa.Array:
        return vocab.take(pa.array(codes))

    def token(name: str) -> pa.Array:
        return text(model.tokens, columns[name])

    def constant(value: str) -> pa.Scalar:
        return pa.scalar(value, STR)

    latency_whole, latency_fraction = _latencies(columns["latency_us"], columns["latency_fraction"])
    parts = [
        constant('{"id":"'),
        _uuids(columns["id"]),
        constant('","time":"'),
        _timestamps(hour, columns["t_ms"]),
        constant('","data":{"baseType":"'),
        text(BASE_TYPE_VOCAB, columns["base_type"]),
        constant('"'),
        text(CC_HEAD, columns["cc"]),
        token("first"),
        text(CC_MID, columns["cc"]),
        token("second"),
        text(CC_TAIL, columns["cc"]),
        constant(',"baseData":{"operationName":"'),
        token("operation"),
        constant('"'),
        text(CALLER_HEAD, columns["caller"]),
        token("caller_token"),
        text(CLOSE_IF_PRESENT, columns["caller"]),
        constant(',"requestType":"'),
        text(REQUEST_TYPE_VOCAB, columns["request_type"]),
        constant('","latencyMs":'),
        latency_whole,
        latency_fraction,
        text(STATUS_VOCAB, columns["status"]),
        constant("}"),
        text(SC_SCENARIO_HEAD, columns["sc_scenario"]),
        token("sc_scenario_token"),
        text(CLOSE_IF_PRESENT, columns["sc_scenario"]),
        text(SC_PARTNER_HEAD, columns["sc_partner"]),
        token("sc_partner_token"),
        text(CLOSE_IF_PRESENT, columns["sc_partner"]),
        text(TEST_HEADER_VOCAB, columns["test_header"]),
        text(QUOTE_IS_TEST_VOCAB, columns["quote_is_test"]),
        text(IS_TEST_VOCAB, columns["is_test"]),
        constant('},"ext":{"cloud":{'),
        text(ENVIRONMENT_VOCAB, columns["environment"]),
        constant('"roleInstance":"'),
        text(model.role_vocab, columns["role"]),
        constant('"},"sll":{"libVer":"'),
        text(LIB_VERSION_VOCAB, columns["lib_version"]),
        constant('"}}}\n'),
    ]
    lines = pc.binary_join_element_wise(*parts, constant(""))
    kind = columns["kind"]
    damaged = np.flatnonzero(kind != KIND_EVENT)
    if len(damaged) == 0:
        return lines
    return pc.replace_with_mask(
        lines, pa.array(kind != KIND_EVENT), _damage(lines, damaged, kind, columns["aux"])
    )


def _damage(lines: pa.Array, positions: np.ndarray, kind: np.ndarray, aux: np.ndarray) -> pa.Array:
    """Replacement text for the malformed and blank rows at `positions`, in position order."""
    pieces: list[pa.Array] = []
    placed: list[np.ndarray] = []

    def emit(where: np.ndarray, values: pa.Array) -> None:
        placed.append(where)
        pieces.append(values)

    def at(which: int) -> np.ndarray:
        return positions[kind[positions] == which]

    blank = at(KIND_BLANK)
    emit(blank, pa.array(["\n"] * len(blank), type=STR))
    not_json = at(KIND_NOT_JSON)
    emit(not_json, NOT_JSON_VOCAB.take(pa.array(aux[not_json] % len(NOT_JSON_LINES))))
    truncated = at(KIND_TRUNCATED)
    for index, stop in enumerate(TRUNCATE_AT):
        where = truncated[aux[truncated] % len(TRUNCATE_AT) == index]
        cut = pc.utf8_slice_codeunits(lines.take(pa.array(where)), 0, stop)
        emit(where, pc.binary_join_element_wise(cut, pa.scalar("\n", STR), pa.scalar("", STR)))
    for which, (pattern, replacement) in MALFORMED_REWRITES.items():
        where = at(which)
        emit(
            where,
            pc.replace_substring_regex(
                lines.take(pa.array(where)), pattern, replacement, max_replacements=1
            ),
        )
    order = np.argsort(np.concatenate(placed), kind="stable")
    return pa.concat_arrays([piece.cast(STR) for piece in pieces]).take(pa.array(order))
