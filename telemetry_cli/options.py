"""Options more than one command takes."""

from datetime import UTC, date, datetime, timedelta

import click


def utc_day(_ctx, _param, value: str) -> date:
    """A UTC day: YYYY-MM-DD, today or yesterday."""
    today = datetime.now(UTC).date()
    named = {"today": today, "yesterday": today - timedelta(days=1)}
    if value.strip().lower() in named:
        return named[value.strip().lower()]
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError as error:
        raise click.BadParameter(
            f"{value!r} is not a day: give YYYY-MM-DD (e.g. 2026-11-20), today or yesterday (UTC)"
        ) from error
