"""`telemetry dashboard`: serve the availability dashboard."""

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8050, show_default=True, type=int, help="Port to bind.")
def dashboard(host: str, port: int) -> None:
    """Serve the dashboard of the warehouse under TELEMETRY_DATA_DIR (reads it read-only).

    Query parameters: day=YYYY-MM-DD, days=N (the selected days up to it), scenario=ID.
    Burn-rate rules and the low-traffic minimum come from the TELEMETRY_MOOD_* variables.
    """
    import uvicorn

    from telemetry_assets.dashboard.server import create_app
    from telemetry_assets.resources import Settings

    settings = Settings.from_env()
    click.echo(f"dashboard of {settings.duckdb_path.absolute()} on http://{host}:{port}/",
               err=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
