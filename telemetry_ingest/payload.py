"""Request bodies to event lines: optional gzip (bounded), then NDJSON or one JSON array."""

import json
import zlib
from dataclasses import dataclass


class PayloadError(Exception):
    """The request as a whole cannot be read; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class EventLines:
    """One JSON text per event, and where each was in the body (NDJSON line or array index)."""

    lines: list[bytes]
    positions: list[int]
    position_name: str


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its gzip layer; a decompressed size over `limit` is refused (413)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        # A gzip body sent without its header is still recognised by the gzip magic number,
        # which no JSON text can start with.
        if not body.startswith(b"\x1f\x8b"):
            return body
    elif encoding not in ("gzip", "x-gzip"):
        raise PayloadError(415, f"unsupported Content-Encoding {content_encoding!r}; use gzip")
    return _gunzip(body, limit)


def _gunzip(body: bytes, limit: int) -> bytes:
    out = bytearray()
    data = body
    while data:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            # max_length bounds memory: a small body cannot expand into gigabytes.
            out += decompressor.decompress(data, limit + 1 - len(out))
        except zlib.error as error:
            raise PayloadError(400, f"body is not valid gzip: {error}") from error
        if len(out) > limit:
            raise PayloadError(413, f"decompressed body exceeds {limit} bytes")
        if not decompressor.eof:
            raise PayloadError(400, "body is not valid gzip: truncated stream")
        # Concatenated gzip members are one stream (what `cat a.gz b.gz` produces).
        data = decompressor.unused_data
    return bytes(out)


def split_events(text: bytes) -> EventLines:
    """NDJSON (one event per line, blank lines skipped) or a single JSON array of events."""
    if text.lstrip()[:1] == b"[":
        try:
            events = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise PayloadError(400, f"malformed JSON array: {error}") from error
        except RecursionError as error:
            # The array must be parsed whole to be split; NDJSON lines are judged one by one.
            raise PayloadError(400, "JSON array nested too deeply to read; send NDJSON") \
                from error
        if not isinstance(events, list):
            raise PayloadError(400, "body is neither NDJSON nor a JSON array")
        encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        return EventLines(
            [encode(event).encode() for event in events], list(range(len(events))), "index"
        )
    numbered = [(number, line) for number, line in enumerate(text.split(b"\n"), 1) if line.strip()]
    return EventLines([line.strip() for _, line in numbered], [n for n, _ in numbered], "line")
