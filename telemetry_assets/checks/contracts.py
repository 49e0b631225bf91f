"""The published contract (SPEC §7) as great-expectations suites, run offline and quietly.

great_expectations takes seconds to import, so it is imported when a suite runs, never when
the code location loads.
"""

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from telemetry_assets.lake import Table
from telemetry_assets.tables import (
    OBJECTIVE_DAILY,
    SCENARIO_DAILY,
    SCENARIO_MINUTE,
    SCENARIO_PARTNER_DAILY,
)

COUNTS = ("total_requests", "successful_requests", "failed_requests")


@dataclass(frozen=True)
class Contract:
    """What a published table promises: its columns in order, its key, its value ranges."""

    table: Table
    columns: tuple[str, ...]
    key: tuple[str, ...]
    required: tuple[str, ...]
    percentages: tuple[str, ...]
    # Never negative; and parts of total_requests, never more than it.
    non_negative: tuple[str, ...] = ("successful_requests", "failed_requests", "avg_latency_ms")
    parts_of_total: tuple[str, ...] = ("successful_requests",)


CONTRACTS = (
    Contract(
        SCENARIO_DAILY,
        ("date", "scenario_id", "scenario_name", "slo_target_pct", *COUNTS, "availability_pct",
         "avg_latency_ms", "p95_latency_ms", "slo_met", "p50_latency_ms", "p99_latency_ms"),
        key=("date", "scenario_id"),
        required=("scenario_name", "slo_target_pct", *COUNTS, "availability_pct", "slo_met"),
        percentages=("availability_pct", "slo_target_pct"),
    ),
    Contract(
        SCENARIO_PARTNER_DAILY,
        ("date", "scenario_id", "partner_id", "partner_name", *COUNTS, "availability_pct",
         "avg_latency_ms", "p95_latency_ms", "p50_latency_ms", "p99_latency_ms"),
        key=("date", "scenario_id", "partner_id"),
        required=(*COUNTS, "availability_pct"),
        percentages=("availability_pct",),
    ),
    Contract(
        SCENARIO_MINUTE,
        ("minute", "scenario_id", *COUNTS, "availability_pct", "avg_latency_ms"),
        key=("minute", "scenario_id"),
        required=(*COUNTS, "availability_pct"),
        percentages=("availability_pct",),
    ),
    Contract(
        OBJECTIVE_DAILY,
        ("date", "scenario_id", "objective", "kind", "threshold_ms", "target_pct",
         "total_requests", "good_requests", "attainment_pct", "attainment_error_pct",
         "objective_met"),
        key=("date", "scenario_id", "objective"),
        required=("kind", "target_pct", "total_requests", "good_requests", "attainment_pct",
                  "attainment_error_pct", "objective_met"),
        percentages=("target_pct", "attainment_pct", "attainment_error_pct"),
        non_negative=("good_requests", "threshold_ms"),
        parts_of_total=("good_requests",),
    ),
)


@dataclass(frozen=True)
class ContractResult:
    success: bool
    evaluated: int
    failures: list[dict[str, Any]]


def _suite(gx: Any, gxe: Any, contract: Contract) -> Any:
    suite = gx.ExpectationSuite(name=f"{contract.table.name}_contract")
    suite.add_expectation(gxe.ExpectTableColumnsToMatchOrderedList(column_list=contract.columns))
    suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=contract.key))
    for column in (*contract.key, *contract.required):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    for column in contract.percentages:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, max_value=100))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="total_requests", min_value=1))
    for column in contract.non_negative:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    for column in contract.parts_of_total:
        suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="total_requests", column_B=column, or_equal=True))
    return suite


def validate_contract(contract: Contract, frame: pd.DataFrame) -> ContractResult:
    """Run the contract's suite on one window's rows of its published table."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("published")
        .add_dataframe_asset(contract.table.name)
        .add_batch_definition_whole_dataframe("window")
    )
    suite = context.suites.add(_suite(gx, gxe, contract))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{contract.table.name}_window", data=batch, suite=suite)
    )
    result = validation.run(batch_parameters={"dataframe": frame})
    failures = [
        {
            "expectation": outcome.expectation_config.type,
            "column": outcome.expectation_config.kwargs.get(
                "column", outcome.expectation_config.kwargs.get("column_list")),
            "unexpected": outcome.result.get("unexpected_count",
                                             outcome.result.get("observed_value")),
            "examples": outcome.result.get("partial_unexpected_list", [])[:3],
        }
        for outcome in result.results
        if not outcome.success
    ]
    return ContractResult(result.success, len(result.results), failures)
