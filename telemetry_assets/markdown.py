"""Markdown for the Dagster UI's metadata, with user data (reference names, reasons, raw lines)
shown as text: never as a table column (`|`), a link (`[x](y)`), emphasis or HTML."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import MetadataValue

# Every character that can open Markdown or HTML inside a table cell; CommonMark lets any ASCII
# punctuation be escaped with a backslash.
_SPECIAL = str.maketrans({character: f"\\{character}" for character in "\\`*_[]<>|~&"})


def cell(value: Any) -> str:
    """One value as literal Markdown text on one line."""
    return " ".join(str(value).split()).translate(_SPECIAL)


def table(rows: Iterable[Mapping[str, Any] | Sequence[Any]],
          columns: Sequence[str] | None = None, *, empty: str = "none") -> MetadataValue:
    """A Markdown table of the rows (mappings keyed by column, or sequences in column order);
    formatting chosen by the caller (say **no**) goes in as `Bold` values."""
    rows = list(rows)
    if not rows:
        return MetadataValue.md(empty)
    if columns is None:
        columns = list(rows[0])
    lines = ["| " + " | ".join(cell(column) for column in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        values = [row[column] for column in columns] if isinstance(row, Mapping) else row
        lines.append("| " + " | ".join(
            value.markdown if isinstance(value, Bold) else cell(value) for value in values) + " |")
    return MetadataValue.md("\n".join(lines))


def frame_table(frame: pd.DataFrame, *, empty: str = "none") -> MetadataValue:
    """A data frame as a Markdown table, every value shown as text."""
    return table(frame.to_dict("records"), list(frame.columns), empty=empty)


class Bold:
    """A value shown in bold, its text escaped."""

    def __init__(self, value: Any):
        self.markdown = f"**{cell(value)}**"
