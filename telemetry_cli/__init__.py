"""The `telemetry` command, and the launcher that runs the pipeline's jobs in this process."""
