"""The `telemetry` command: what a person does without the Dagster UI."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Service availability platform: generate traffic, run and backfill the pipeline."""
