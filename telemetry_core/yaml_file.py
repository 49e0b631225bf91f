"""Configuration files in YAML whose every complaint names its line.

The file is composed into nodes (not loaded into plain values), so a reader walking it always
knows the line of what it is looking at, and collects every error before reporting them all.
"""

import math
from collections.abc import Collection
from contextlib import suppress
from datetime import date, datetime
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from telemetry_core.sql import utc_naive


class ConfigFileError(ValueError):
    """A configuration file breaks its rules; `errors` lists each as `path:line: reason`."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def compose(path: Path, what: str) -> Node | None:
    """The file's root node (None for an empty file); raises `ConfigFileError` when it cannot
    be read or is not YAML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigFileError([f"{path}: cannot read the {what}: {reason}"]) from error
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigFileError([f"{path}:{line}: not valid YAML: {problem}"]) from error


def shown(node: Node) -> str:
    """A node as the file spells it, for an error message."""
    if isinstance(node, ScalarNode):
        return repr(node.value) if node.style or node.tag.endswith(":str") else node.value
    return "a mapping" if isinstance(node, MappingNode) else "a list"


class NodeReader:
    """Walks composed YAML nodes, collecting `path:line: reason` for everything wrong."""

    def __init__(self, path: Path):
        self.path = path
        self.errors: list[tuple[int, str]] = []
        self._constructor = yaml.SafeLoader("")

    def raise_errors(self) -> None:
        """Raise every collected error at once, in line order."""
        if self.errors:
            raise ConfigFileError([text for _, text in sorted(self.errors, key=lambda e: e[0])])

    def error(self, node: Node, reason: str) -> None:
        line = node.start_mark.line + 1
        self.errors.append((line, f"{self.path}:{line}: {reason}"))

    def value(self, node: ScalarNode) -> object:
        try:
            return self._constructor.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as error:
            # A scalar YAML reads as a date or a number it cannot be (2026-02-30): the text.
            self.error(node, f"{shown(node)} cannot be read: {error}")
            return node.value

    def mapping(self, node: Node, what: str, allowed: Collection[str],
                required: Collection[str] = ()) -> dict[str, Node] | None:
        """The entries of a mapping node by key; complains about unknown, duplicate and missing
        keys (None when `node` is not a mapping)."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        entries: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                shown_key = key if key is not None else "(not a plain key)"
                self.error(key_node, f"unknown key {shown_key!r} in {what} "
                                     f"(allowed: {', '.join(allowed)})")
            elif key in entries:
                self.error(key_node, f"duplicate key {key!r} in {what}")
            else:
                entries[key] = value_node
        for key in required:
            if key not in entries:
                self.error(node, f"{what} lacks {key!r}")
        return entries

    def sequence(self, node: Node, what: str) -> list[Node]:
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list")
            return []
        return list(node.value)

    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and self.value(node) is None

    def text(self, node: Node, what: str) -> str | None:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            self.error(node, f"{what} must be a non-empty string")
            return None
        return value.strip()

    def number(self, node: Node, what: str) -> float | None:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        # bool is an int to Python; `true` where a number belongs is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(node, f"{what} must be a number, not {shown(node)}")
            return None
        if not math.isfinite(value):
            self.error(node, f"{what} must be a finite number, not {shown(node)}")
            return None
        return float(value)

    def timestamp(self, node: Node, what: str) -> datetime | None:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, str):
            with suppress(ValueError):
                value = datetime.fromisoformat(value.strip())
        if isinstance(value, datetime):
            return utc_naive(value)
        if isinstance(value, date):
            self.error(node, f"{what} {value} needs a time of day too, "
                             "e.g. 2026-11-14T02:00:00Z")
        else:
            self.error(node, f"{what} {shown(node)} is not an ISO-8601 timestamp "
                             "(e.g. 2026-11-14T02:00:00Z)")
        return None
