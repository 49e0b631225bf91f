"""Durable landing writes: one file per event-time hour and batch.

A file becomes visible under its final name only after its bytes are on disk (temp name in the
target folder, fsync, rename, fsync of the folder), so the pipeline never reads half a file
and an acknowledged event survives a crash. The name is a hash of the content: a batch that a
client re-sends because the acknowledgement was lost lands under the same name, once.
"""

import hashlib
from datetime import datetime
from pathlib import Path

from telemetry_core.durable import fsync_dir, write_bytes
from telemetry_core.landing import hour_folder


class LandingWriter:
    """Writes groups of lines under `<landing>/events/date=YYYY-MM-DD/hour=HH/`."""

    def __init__(self, landing_dir: Path) -> None:
        self.landing_dir = landing_dir

    def write_hours(self, hours: dict[datetime, list[bytes]], source: str) -> list[Path]:
        """Land every hour's lines durably; returns the files, existing ones included."""
        return [
            self.write_file(hour_folder(self.landing_dir, hour), lines, source)
            for hour, lines in sorted(hours.items())
            if lines
        ]

    def write_file(self, folder: Path, lines: list[bytes], source: str) -> Path:
        """One durable file of `lines` in `folder`, named `<source>-<content hash>.jsonl`."""
        data = b"\n".join(lines) + b"\n"
        name = f"{source}-{hashlib.sha256(data).hexdigest()[:40]}.jsonl"
        final = folder / name
        if not final.exists():
            write_bytes(final, data)
        else:
            # Its rename may not have been made durable by the process that wrote it before
            # that process died.
            fsync_dir(folder)
        return final
