"""`telemetry slo`: check the objectives file (slos.yaml) and export it as OpenSLO."""

import sys
from pathlib import Path

import click

from telemetry_cli.options import CommandFailed
from telemetry_core.settings import Settings
from telemetry_core.slos import SloCatalog, SloFileError


def reference_scenarios(settings: Settings) -> tuple[dict[str, tuple[str, str, float]], set[str]]:
    """scenario_id -> (scenario_name, service, slo_target_pct), and the customer tiers, read
    through the reference CSVs' own contracts."""
    from telemetry_assets.assets.reference import ReferenceDataError, read_reference_csv
    from telemetry_assets.checks.schemas import CustomerReference, ScenarioReference
    from telemetry_assets.tables import CUSTOMERS, SCENARIOS

    try:
        scenarios = read_reference_csv(settings.reference_dir / f"{SCENARIOS.name}.csv",
                                       ScenarioReference)
        customers = read_reference_csv(settings.reference_dir / f"{CUSTOMERS.name}.csv",
                                       CustomerReference)
    except ReferenceDataError as error:
        raise CommandFailed(str(error)) from error
    rows = {
        row.scenario_id: (row.scenario_name, row.service, float(row.slo_target_pct))
        for row in scenarios.itertuples(index=False)
    }
    return rows, set(customers["tier"])


def _catalog(file: Path | None) -> tuple[SloCatalog, dict[str, tuple[str, str, float]]]:
    from telemetry_core.slos import load_slos

    settings = Settings.from_env()
    path = file if file is not None else settings.slos_file
    scenarios, tiers = reference_scenarios(settings)
    try:
        catalog = load_slos(path, {s: row[2] for s, row in scenarios.items()}, tiers)
    except SloFileError as error:
        raise CommandFailed("\n".join(error.errors)) from error
    return catalog, scenarios


def _dumper():
    import yaml

    class Dumper(yaml.SafeDumper):
        """Writes multi-line strings (the SQL) as literal blocks, readable in review."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


_FILE = click.argument("file", required=False,
                       type=click.Path(dir_okay=False, path_type=Path))


@click.group()
def slo() -> None:
    """Service level objectives as code: slos.yaml beside the reference CSVs (TELEMETRY_SLOS)."""


@slo.command()
@_FILE
def check(file: Path | None) -> None:
    """Validate FILE (default: TELEMETRY_SLOS, or slos.yaml in TELEMETRY_REFERENCE_DIR) against
    scenarios.csv and customers.csv: one line per objective, or every error as path:LINE: reason
    and exit status 1."""
    catalog, _ = _catalog(file)
    for o in catalog.objectives:
        what = (f"latency <= {o.threshold_ms:g} ms" if o.kind == "latency" else "availability")
        tiers = "".join(f", {tier} {target:g} %" for tier, target in o.tier_targets)
        origin = f"line {o.line}" if o.line is not None else "scenarios.csv"
        click.echo(f"{o.subject}: {what} {o.target_pct:g} %{tiers} ({origin})")
    source = catalog.source if catalog.source is not None else "no slos.yaml"
    click.echo(f"{len(catalog.objectives)} objectives, {len(catalog.credits)} credit steps, "
               f"{len(catalog.maintenance)} maintenance windows ({source})", err=True)


@slo.command()
@_FILE
@click.option("--format", "format_", type=click.Choice(["openslo"]), default="openslo",
              show_default=True, help="Export format.")
@click.option("--output", "-o", default="-", show_default=True,
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="File to write, or - for stdout.")
def export(file: Path | None, format_: str, output: Path) -> None:
    """Write the objectives as OpenSLO v1 documents (one YAML stream): a Service per service
    and an SLO per objective, over the rolling error-budget window
    (TELEMETRY_MOOD_BUDGET_WINDOW)."""
    import yaml

    from telemetry_assets.mood.burn_rates import MoodPolicy, format_duration
    from telemetry_core.openslo import ScenarioInfo, openslo_documents
    from telemetry_core.sql import LATENCY_GROWTH, ZERO_LATENCY_BUCKET

    catalog, scenarios = _catalog(file)
    try:
        budget_minutes = MoodPolicy.from_env().budget_minutes
        documents = openslo_documents(
            catalog,
            {s: ScenarioInfo(name, service) for s, (name, service, _) in scenarios.items()},
            budget_window=format_duration(budget_minutes),
            latency_growth=LATENCY_GROWTH,
            zero_bucket=ZERO_LATENCY_BUCKET,
        )
    except ValueError as error:
        raise CommandFailed(str(error)) from error
    text = yaml.dump_all(documents, Dumper=_dumper(), sort_keys=False, allow_unicode=True,
                         width=100)
    if str(output) == "-":
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CommandFailed(f"{output}: cannot write: {error.strerror or error}") from error
    click.echo(f"{len(documents)} OpenSLO documents written to {output}", err=True)
