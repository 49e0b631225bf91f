"""One hour of traffic drawn as integer codes, ready to be rendered into lines."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from telemetry_synth.model import INSTANCES_PER_SERVICE, Model
from telemetry_synth.vocabulary import (
    BASE_TYPES,
    CC_ABSENT,
    CC_BOTH_P,
    CC_EMPTY,
    CC_EMPTY_SCENARIO,
    CC_NON_TELEMETRY,
    CC_PARTNER_ONLY,
    CC_SCENARIO_ONLY,
    CC_STANDARD,
    CC_TEMPLATES,
    DUPLICATE_RATE,
    ENVIRONMENTS,
    FAILURE_STATUS_P,
    GATEWAY_CALLERS,
    IS_TEST,
    KIND_BLANK,
    KIND_STATUS_STRING,
    LEGACY_LIB_VERSIONS,
    MALFORMED_KINDS,
    MISSING_STATUS,
    MISSING_STATUS_RATE,
    MODE_CALLER_PARTNER,
    MODE_CC,
    MODE_EMPTY_CC_SCENARIO,
    MODE_LEGACY,
    MODE_NO_PARTNER,
    MODE_OP_ONLY,
    MODE_P,
    MODE_UNATTRIBUTED,
    MODERN_LIB_VERSIONS,
    QUOTE_IS_TEST,
    SUCCESS_STATUS_P,
    TEST_HEADERS,
    UNATTRIBUTED_OPERATIONS,
    UNKNOWN_PARTNER_RATE,
    UNKNOWN_SCENARIO_RATE,
    ZERO_LATENCY_RATE,
)

HOUR = timedelta(hours=1)
MS_PER_HOUR = 3_600_000


@dataclass
class HourRows:
    """Every line of one hour as integer codes, sorted by file then event time."""

    hour: datetime
    columns: dict[str, np.ndarray]
    file_bounds: np.ndarray
    gzipped: np.ndarray
    duplicates: int


def _probabilities(weighted: Sequence[tuple[object, float]]) -> np.ndarray:
    weights = np.array([weight for _, weight in weighted], dtype=np.float64)
    return weights / weights.sum()


def _pick(rng: np.random.Generator, weighted: Sequence[tuple[object, float]], n: int) -> np.ndarray:
    return rng.choice(len(weighted), size=n, p=_probabilities(weighted)).astype(np.int8)


def draw_hour(
    model: Model,
    seed: int,
    hour: datetime,
    count: int,
    files_per_hour: int,
    gzip_share: float,
    malformed_rate: float,
) -> HourRows:
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
    return HourRows(hour, columns, file_bounds, gzipped, n_duplicates)
