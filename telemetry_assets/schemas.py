"""pandera models for the frames that cross into Python: the reference CSVs."""

import pandera.pandas as pa
from pandera.typing import Series


class ScenarioReference(pa.DataFrameModel):
    """scenarios.csv: one row per scenario with its owning service and SLO target."""

    scenario_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    scenario_name: Series[str] = pa.Field(str_length={"min_value": 1})
    service: Series[str] = pa.Field(str_length={"min_value": 1})
    slo_target_pct: Series[float] = pa.Field(ge=0, le=100)
    stid: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True


class CustomerReference(pa.DataFrameModel):
    """customers.csv: one row per partner with its name and tier."""

    partner_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    partner_name: Series[str] = pa.Field(str_length={"min_value": 1})
    tier: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True


class OperationScenarioReference(pa.DataFrameModel):
    """operation_scenarios.csv: the allow-list mapping an operation name to its scenario."""

    operation_name: Series[str] = pa.Field(unique=True, str_length={"min_value": 1})
    scenario_id: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        strict = True
        coerce = True
