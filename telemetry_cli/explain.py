"""`telemetry explain`: why a scenario's published figures for a day changed, revision by
revision."""

import json
import sys
from datetime import date

import click
from rich.text import Text

from telemetry_cli.options import stdout_console, utc_day
from telemetry_core.settings import Settings


def _count(value) -> str:
    return "-" if value is None else f"{value:,}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.4f} %"


@click.command()
@click.option("--date", "day", required=True, callback=utc_day,
              help="A UTC day: YYYY-MM-DD, today or yesterday.")
@click.option("--scenario", required=True, help="The scenario id.")
def explain(day: date, scenario: str) -> None:
    """Print each re-publication of a scenario's day: old and new figures, the hours re-run,
    the landing files new or changed (with their event counts), reference values changed."""
    from telemetry_assets.revisions import revisions_of

    out = stdout_console()
    found = revisions_of(Settings.from_env().lake_dir, day, scenario.strip())
    if not found:
        out.print(Text(f"{scenario} on {day}: no revision recorded (published once, as it is, "
                       "or not published)"), soft_wrap=True)
        sys.exit(1)
    for row in found:
        out.print(Text(f"{row['scenario_id']} on {day}, revised at "
                       f"{row['revised_at']:%Y-%m-%d %H:%M:%S} UTC (run {row['revision_id']})",
                       style="bold"), soft_wrap=True)
        out.print(Text(f"  availability {_pct(row['availability_pct_before'])} → "
                       f"{_pct(row['availability_pct'])}; requests "
                       f"{_count(row['total_requests_before'])} → {_count(row['total_requests'])}"
                       f"; failed {_count(row['failed_requests_before'])} → "
                       f"{_count(row['failed_requests'])}"), soft_wrap=True)
        if row["slo_target_pct_before"] != row["slo_target_pct"]:
            out.print(Text(f"  SLO target {row['slo_target_pct_before']} → "
                           f"{row['slo_target_pct']}"), soft_wrap=True)
        if row["scenario_name_before"] != row["scenario_name"]:
            out.print(Text(f"  name {row['scenario_name_before']!r} → {row['scenario_name']!r}"),
                      soft_wrap=True)
        out.print(Text(f"  hours re-run: {row['hours_rerun'] or 'none'}"), soft_wrap=True)
        for change in json.loads(row["files"]):
            out.print(Text(
                f"  {change['change']} landing file {change['file']} (hour "
                f"{change['hour']}): {_count(change['events_before'])} → "
                f"{_count(change['events'])} events, {_count(change['rejected_before'])} → "
                f"{_count(change['rejected'])} rejected lines"), soft_wrap=True)
        out.print(Text(f"  because: {row['reason']}"), soft_wrap=True)
