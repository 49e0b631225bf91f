"""`telemetry dashboard`: serve the availability dashboard; the demo's dashboard and mood."""

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8050, show_default=True, type=click.IntRange(1, 65535),
              help="Port to bind.")
def dashboard(host: str, port: int) -> None:
    """Serve the dashboard of the warehouse under TELEMETRY_DATA_DIR (reads it read-only).

    Query parameters: day=YYYY-MM-DD, days=N (the selected days up to it), scenario=ID.
    Burn-rate rules and the low-traffic minimum come from the TELEMETRY_MOOD_* variables.
    """
    import uvicorn

    from telemetry_assets.dashboard.server import create_app
    from telemetry_core.settings import Settings

    settings = Settings.from_env()
    click.echo(f"dashboard of {settings.duckdb_path.absolute()} on http://{host}:{port}/",
               err=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


def build_for_demo() -> tuple[str, object]:
    """Rebuild the dashboard file through its job (recorded in DAGSTER_HOME); return its path
    and the current mood report."""
    from telemetry_assets.assets.present import dashboard_path
    from telemetry_assets.jobs import DASHBOARD_JOB
    from telemetry_assets.mood.burn_rates import current_mood
    from telemetry_assets.resources import MoodSettings, TelemetryStore
    from telemetry_cli.launcher import execute, instance_for_cli

    execute(instance_for_cli(), DASHBOARD_JOB, {})
    store = TelemetryStore()
    policy = MoodSettings().policy
    report = store.lake.read(lambda con: current_mood(con, policy)).value
    return str(dashboard_path(store.settings).absolute()), report


def print_mood(report, console) -> None:
    """The current mood per scenario, worst first, as a table."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from telemetry_assets.mood.burn_rates import format_duration

    if report is None:
        console.print("No minute aggregates: no mood to report.")
        return
    colours = {"healthy": "green", "degraded": "yellow", "breaching": "red"}
    windows = [format_duration(m) for m in report.policy.window_minutes]
    table = RichTable(title=f"Service mood as of {report.as_of:%Y-%m-%d %H:%M} UTC "
                            f"(overall: {report.overall})")
    for header in ("scenario", "mood", *(f"burn {w}" for w in windows), "budget left %"):
        table.add_column(header, justify="left" if header in ("scenario", "mood") else "right")
    for mood in report.worst_first():
        burns = [
            "-" if mood.windows[w].burn_rate is None
            else f"{mood.windows[w].burn_rate:.2f}" + ("" if mood.windows[w].judged else "*")
            for w in windows
        ]
        remaining = mood.budget_remaining_pct
        # The id comes from the reference CSVs: Text, so that rich reads no markup in it.
        table.add_row(
            Text(mood.scenario_id), f"[{colours[mood.state]}]{mood.state}[/]", *burns,
            "-" if remaining is None else f"{remaining:.1f}",
        )
    console.print(table)
    console.print(f"* fewer than {report.policy.min_requests} requests: not judged. "
                  + ", ".join(f"{count} {state}" for state, count in report.counts().items()))
    overall = report.overall_burn_rates()
    console.print("All scenarios together, burn rate against their summed budgets: " + ", ".join(
        f"{name} {'-' if rate is None else f'{rate:.2f}'}" for name, rate in overall.items()))
