"""`telemetry annotate` records an annotation; `telemetry annotations` lists a day's."""

from datetime import date, datetime, timedelta

import click
from rich.table import Table as RichTable
from rich.text import Text

from telemetry_cli.options import current_user, stdout_console, utc_day
from telemetry_core.annotations import AnnotationError, AnnotationStore, KnownScopes, build
from telemetry_core.settings import Settings


@click.command()
@click.option("--text", required=True, help="What happened, for whoever looks at the chart.")
@click.option("--kind", default="note", show_default=True,
              help="A word for what it is: deploy, incident, maintenance, note, …")
@click.option("--scope", default="all", show_default=True,
              help="all, service:NAME, scenario:ID or partner:ID.")
@click.option("--start", help="ISO-8601 time (UTC if no offset); default now.")
@click.option("--end", help="End of a time range (ISO-8601); none for a moment.")
@click.option("--link", help="An http(s) link to the evidence (a deploy, a ticket).")
def annotate(text: str, kind: str, scope: str, start: str | None, end: str | None,
             link: str | None) -> None:
    """Record an annotation, shown on the dashboard's charts beside the figures."""
    settings = Settings.from_env()
    fields = {"text": text, "kind": kind, "scope": scope, "start": start, "end": end,
              "link": link}
    try:
        annotation = build({k: v for k, v in fields.items() if v is not None},
                           source=f"cli:{current_user()}",
                           known=KnownScopes.from_reference(settings.reference_dir))
    except AnnotationError as error:
        raise click.UsageError(f"annotation not recorded: {error}") from None
    AnnotationStore(settings.lake_dir).add([annotation])
    when = f"{annotation.starts_at:%Y-%m-%d %H:%M:%S}" + (
        f" → {annotation.ends_at:%Y-%m-%d %H:%M:%S}" if annotation.ends_at else "")
    scope = annotation.scope + (f":{annotation.scope_value}" if annotation.scope_value else "")
    # Text, not markup: a partner or scenario id is user data.
    stdout_console().print(Text(f"recorded {annotation.kind} annotation "
                                f"{annotation.annotation_id} at {when} UTC, scope {scope}"),
                           soft_wrap=True)


@click.command()
@click.option("--date", "day", required=True, callback=utc_day,
              help="A UTC day: YYYY-MM-DD, today or yesterday.")
def annotations(day: date) -> None:
    """List the annotations that overlap a UTC day, oldest first."""
    start = datetime.combine(day, datetime.min.time())
    found = AnnotationStore(Settings.from_env().lake_dir).between(start, start + timedelta(days=1))
    if not found:
        stdout_console().print(f"no annotations on {start:%Y-%m-%d}")
        return
    table = RichTable(title=Text(f"Annotations on {start:%Y-%m-%d} (UTC)"), title_justify="left")
    for header in ("start", "end", "scope", "kind", "text", "source", "link"):
        table.add_column(header)
    for a in found:
        table.add_row(_when(a.starts_at), _when(a.ends_at), Text(
            a.scope + (f":{a.scope_value}" if a.scope_value else "")), Text(a.kind),
            Text(a.text), Text(a.source), Text(a.link or ""))
    stdout_console().print(table)



def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"
