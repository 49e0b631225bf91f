"""pandera models for the frames that cross into Python: the reference CSVs."""

import pandas as pd
import pandera.pandas as pa
from pandera.extensions import register_check_method
from pandera.typing import Series


@register_check_method()
def unique_ignoring_case(ids: pd.Series) -> pd.Series:
    """Ids are matched trimmed and case-insensitively downstream, so `A` and `a` are one id."""
    return ~ids.str.strip().str.lower().duplicated(keep=False)


class ScenarioReference(pa.DataFrameModel):
    """scenarios.csv: one row per scenario with its owning service and SLO target."""

    scenario_id: Series[str] = pa.Field(
        unique=True, unique_ignoring_case=(), str_length={"min_value": 1}
    )
    scenario_name: Series[str] = pa.Field(str_length={"min_value": 1})
    service: Series[str] = pa.Field(str_length={"min_value": 1})
    slo_target_pct: Series[float] = pa.Field(ge=0, le=100)
    stid: Series[str] = pa.Field(str_length={"min_value": 1})
    # Optional: linked from every notification about the scenario (docs/mood-and-alerts.md).
    runbook_url: Series[str] | None = pa.Field(nullable=True, str_matches=r"^(https?://\S+)?$")

    class Config:
        strict = True
        coerce = True


class CustomerReference(pa.DataFrameModel):
    """customers.csv: one row per partner with its name and tier."""

    partner_id: Series[str] = pa.Field(
        unique=True, unique_ignoring_case=(), str_length={"min_value": 1}
    )
    partner_name: Series[str] = pa.Field(str_length={"min_value": 1})
    tier: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True


class OperationScenarioReference(pa.DataFrameModel):
    """operation_scenarios.csv: the allow-list mapping an operation name to its scenario."""

    operation_name: Series[str] = pa.Field(
        unique=True, unique_ignoring_case=(), str_length={"min_value": 1}
    )
    scenario_id: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True


class QualitySummary(pa.DataFrameModel):
    """quality_summary: one row per day; every line read is an event or a rejected line, and
    every event is kept or excluded for exactly one reason."""

    date: Series[pa.Date] = pa.Field(unique=True)
    lines_read: Series[int] = pa.Field(ge=0)
    events: Series[int] = pa.Field(ge=0)
    rejected_lines: Series[int] = pa.Field(ge=0)
    excluded_duplicate: Series[int] = pa.Field(ge=0)
    excluded_wrong_type: Series[int] = pa.Field(ge=0)
    excluded_non_prod: Series[int] = pa.Field(ge=0)
    excluded_test_traffic: Series[int] = pa.Field(ge=0)
    excluded_unattributed: Series[int] = pa.Field(ge=0)
    kept: Series[int] = pa.Field(ge=0)
    aggregated_requests: Series[int] = pa.Field(ge=0)
    held_back_requests: Series[int] = pa.Field(ge=0)
    checks_run: Series[int] = pa.Field(ge=0)
    checks_failed: Series[int] = pa.Field(ge=0)
    failed_checks: Series[str] = pa.Field(nullable=False)

    @pa.dataframe_check
    def lines_are_events_or_rejected(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["lines_read"] == frame["events"] + frame["rejected_lines"]

    @pa.dataframe_check
    def events_are_kept_or_excluded_once(cls, frame: pd.DataFrame) -> pd.Series:
        excluded = frame.filter(like="excluded_").sum(axis="columns")
        return frame["events"] == frame["kept"] + excluded

    @pa.dataframe_check
    def kept_events_are_aggregated(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["kept"] == frame["aggregated_requests"]

    class Config:
        strict = True
        coerce = True
