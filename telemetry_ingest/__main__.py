"""`python -m telemetry_ingest serve|consume`: the ingest commands without the pipeline's CLI
(and its Dagster import), for processes that should start fast."""

import click

from telemetry_ingest.commands import consume, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Ingest events into the landing folder."""


main.add_command(serve)
main.add_command(consume)

if __name__ == "__main__":
    main()
