"""What more than one command shares: its options and its console."""

import getpass
import sys
from datetime import UTC, date, datetime, timedelta

import click
from rich.console import Console


def stdout_console() -> Console:
    """Standard output as rich writes it; piped output (CI logs, files) would otherwise be
    wrapped at 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


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


class CommandFailed(click.ClickException):
    """An error message on stderr and exit status 1, without a traceback."""

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no name and no $USER
        return "unknown"
