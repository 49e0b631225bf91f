"""Reference tables loaded from the CSVs in TELEMETRY_REFERENCE_DIR, like dbt seeds."""

import codecs
import csv
import io
from contextlib import closing
from pathlib import Path

import pandas as pd
import pandera.errors
import pandera.pandas as pa
from dagster import AssetExecutionContext, AssetsDefinition, Failure, MaterializeResult

from telemetry_assets import markdown
from telemetry_assets.checks.schemas import (
    CustomerReference,
    OperationScenarioReference,
    ScenarioReference,
)
from telemetry_assets.lake import Lake, Table
from telemetry_assets.resources import TelemetryStore
from telemetry_assets.stage import stage_asset
from telemetry_assets.tables import CUSTOMERS, OBJECTIVES, OPERATION_SCENARIOS, SCENARIOS
from telemetry_core.annotations import Annotation, note, platform_id
from telemetry_core.settings import Settings
from telemetry_core.slos import MaintenanceWindow, SloCatalog, SloFileError, load_slos
from telemetry_core.sql import compute_connection

REFERENCE_FILES = tuple(
    f"{table.name}.csv" for table in (SCENARIOS, CUSTOMERS, OPERATION_SCENARIOS)
)


class ReferenceDataError(ValueError):
    """A reference CSV breaks its contract; the message names the file, rows and rules."""


def read_reference_csv(path: Path, model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """The CSV as a frame that satisfies `model`, or a ReferenceDataError saying what is wrong."""
    if not path.is_file():
        raise ReferenceDataError(
            f"{path}: file not found. The reference CSVs ({', '.join(REFERENCE_FILES)}) are read "
            f"from {path.parent} (TELEMETRY_REFERENCE_DIR, by default "
            "$TELEMETRY_DATA_DIR/reference); the repository's data/reference/ holds a default "
            "set to copy there."
        )
    text = _decode(path, path.read_bytes())
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True)
    except pd.errors.EmptyDataError as error:
        raise ReferenceDataError(f"{path}: the file is empty (expected a header row)") from error
    frame = frame.apply(lambda column: column.str.strip())
    if frame.empty:
        raise ReferenceDataError(f"{path}: no rows below the header")
    try:
        return model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        failures = errors.failure_cases
    uncoerced = failures[failures["check"].str.startswith("coerce_dtype")]
    bad_rows = uncoerced["index"].dropna().astype(int).unique()
    if len(bad_rows):
        # pandera checks a column it could not coerce as text: its range checks fail with a
        # TypeError that names no row, and its dtype check repeats each bad value. Name each bad
        # value once, and hold the other rows to every rule.
        failures = uncoerced
        try:
            model.validate(frame.drop(index=bad_rows), lazy=True)
        except pandera.errors.SchemaErrors as errors:
            failures = pd.concat([uncoerced, errors.failure_cases], ignore_index=True)
    raise ReferenceDataError(_describe_failures(path, failures))


def _decode(path: Path, data: bytes) -> str:
    """The file's text; a byte that is not UTF-8 is named by line and column, as an editor
    shows them."""
    # Spreadsheet programs often start a UTF-8 CSV with a byte-order mark. It is cut here rather
    # than by decoding as utf-8-sig, whose error offsets would not count it.
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        line_start = data.rfind(b"\n", 0, error.start) + 1
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", "replace")]), [])
        # Everything before the first bad byte decodes; its fields say which column it is in.
        before = data[line_start:error.start].decode("utf-8")
        field = max(len(next(csv.reader([before]), [])) - 1, 0)
        column = (f"column {header[field].strip()}" if line > 1 and field < len(header)
                  else f"field {field + 1}")
        raise ReferenceDataError(
            f"{path}: line {line}, {column}: not UTF-8 (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8"
        ) from error


def _describe_failures(path: Path, failures: pd.DataFrame) -> str:
    lines = [f"{path}: {len(failures)} problem(s)"]
    for failure in failures.head(20).itertuples():
        if pd.isna(failure.index):
            where = "header" if failure.schema_context == "DataFrameSchema" else "column"
            lines.append(f"  {where}: {failure.check} ({failure.failure_case})")
        else:
            # Data row i of the frame is line i + 2 of the file (line 1 is the header).
            lines.append(
                f"  line {int(failure.index) + 2}, column {failure.column}: "
                f"{failure.check} (value {failure.failure_case!r})"
            )
    return "\n".join(lines)


def reference_asset(
    table: Table, model: type[pa.DataFrameModel], description: str
) -> AssetsDefinition:
    """An asset that loads <reference dir>/<name>.csv, validated by `model`, into the lake."""

    @stage_asset(table, description, kinds=("csv", "parquet"))
    def load(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
        path = store.settings.reference_dir / f"{table.name}.csv"
        frame = read_reference_csv(path, model)
        lake = store.lake
        with closing(compute_connection()) as con:
            rows = lake.write(table, None, con.from_df(frame))
        lake.publish_views([table])
        context.log.info(f"{table.qualified_name}: {rows} rows from {path}")
        return MaterializeResult(
            metadata={
                "rows": rows,
                "source": str(path.absolute()),
                "preview": markdown.frame_table(frame.head(10)),
            }
        )

    return load


scenarios = reference_asset(
    SCENARIOS, ScenarioReference,
    "Scenarios with their name, owning service, SLO target % and stid, one row per scenario.",
)
customers = reference_asset(
    CUSTOMERS, CustomerReference,
    "Partners (customers) with their name and tier, one row per partner id.",
)
operation_scenarios = reference_asset(
    OPERATION_SCENARIOS, OperationScenarioReference,
    "The operation allow-list: which scenario an operation name belongs to.",
)


def load_catalog(lake: Lake, settings: Settings) -> SloCatalog:
    """The objectives of the loaded reference scenarios and customer tiers, with slos.yaml's
    (Settings.slos_file) additions. Raises SloFileError naming every bad line."""
    with closing(compute_connection()) as con:
        lake.register(con, SCENARIOS)
        lake.register(con, CUSTOMERS)
        targets = dict(con.sql("select scenario_id, cast(slo_target_pct as double) "
                               "from scenarios").fetchall())
        tiers = {tier for (tier,) in con.sql("select distinct tier from customers").fetchall()}
    return load_slos(settings.slos_file, targets, tiers)


def maintenance_annotation(window: MaintenanceWindow) -> Annotation:
    """A maintenance window of slos.yaml on the charts it covers (all, when its patterns are
    globs; the scenario's or partner's when they name one)."""
    scope, value = "all", None
    if window.partners == "*" and not any(c in window.scenarios for c in "*?["):
        scope, value = "scenario", window.scenarios
    elif window.scenarios == "*" and not any(c in window.partners for c in "*?["):
        scope, value = "partner", window.partners
    return Annotation(
        starts_at=window.start, ends_at=window.end, scope=scope, scope_value=value,
        kind="maintenance", source="platform:slos.yaml",
        text=f"maintenance window of scenarios {window.scenarios!r}, partners "
             f"{window.partners!r}" + (f": {window.reason}" if window.reason else "")
             + " (excluded from the SLA statements)",
        annotation_id=platform_id("maintenance", window.start, window.end, window.scenarios,
                                  window.partners, window.reason))


def objectives_frame(catalog: SloCatalog) -> pd.DataFrame:
    """One row per objective, in the columns reference.objectives holds."""
    return pd.DataFrame(
        [(o.scenario_id, o.name, o.kind, o.threshold_ms, o.target_pct, o.subject, o.line)
         for o in catalog.objectives],
        columns=["scenario_id", "objective", "kind", "threshold_ms", "target_pct", "subject",
                 "source_line"],
    ).astype({"threshold_ms": "float64", "target_pct": "float64", "source_line": "Int64"})


@stage_asset(OBJECTIVES, kinds=("yaml", "parquet"), description=(
    "Every scenario's objectives: its availability target from scenarios.csv and the latency "
    "objectives of slos.yaml, one row per scenario and objective."))
def objectives(context: AssetExecutionContext, store: TelemetryStore) -> MaterializeResult:
    try:
        catalog = load_catalog(store.lake, store.settings)
    except SloFileError as error:
        raise Failure(description=str(error), allow_retries=False) from error
    frame = objectives_frame(catalog)
    with closing(compute_connection()) as con:
        rows = store.lake.write(OBJECTIVES, None, con.from_df(frame))
    store.lake.publish_views([OBJECTIVES])
    note(store.lake.root, (maintenance_annotation(window) for window in catalog.maintenance),
         context.log)
    source = str(catalog.source.absolute()) if catalog.source else "scenarios.csv only"
    context.log.info(f"{OBJECTIVES.qualified_name}: {rows} objectives from {source}")
    return MaterializeResult(metadata={
        "rows": rows,
        "latency_objectives": int((frame["kind"] == "latency").sum()),
        "source": source,
        "preview": markdown.frame_table(frame[frame["kind"] != "availability"].head(20),
                                        empty="no objectives beyond availability"),
    })
