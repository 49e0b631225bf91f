"""Drawn rows rendered into the bytes of one landing file, malformed and blank lines included."""

import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry_core.durable import write_bytes
from telemetry_synth.model import Model
from telemetry_synth.vocabulary import (
    BASE_TYPE_VOCAB,
    CALLER_HEAD,
    CC_HEAD,
    CC_MID,
    CC_TAIL,
    CLOSE_IF_PRESENT,
    ENVIRONMENT_VOCAB,
    IS_TEST_VOCAB,
    KIND_BLANK,
    KIND_EVENT,
    KIND_NOT_JSON,
    KIND_TRUNCATED,
    LIB_VERSION_VOCAB,
    MALFORMED_REWRITES,
    NOT_JSON_LINES,
    NOT_JSON_VOCAB,
    QUOTE_IS_TEST_VOCAB,
    REQUEST_TYPE_VOCAB,
    SC_PARTNER_HEAD,
    SC_SCENARIO_HEAD,
    STATUS_VOCAB,
    STR,
    TEST_HEADER_VOCAB,
    TRUNCATE_AT,
)


def write_file(
    model: Model, hour: datetime, columns: dict[str, np.ndarray], path: Path, gzipped: bool
) -> Path:
    """Render and atomically replace one landing file."""
    payload = _payload(_render(model, hour, columns))
    if gzipped:
        # Raw zlib with a gzip wrapper (wbits=31) stamps no mtime or file name, so the
        # bytes depend on the content alone.
        payload = zlib.compress(payload, 1, wbits=31)
    return write_bytes(path, payload)


def _payload(lines: pa.Array) -> memoryview:
    """The concatenated text of a string array whose every element ends in a newline."""
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[first:last]


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    """An Arrow string array over the rows of an ASCII byte matrix, without per-row copies."""
    rows, width = matrix.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int64)
    data = np.ascontiguousarray(matrix)
    return pa.Array.from_buffers(STR, rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
UUID_DIGITS = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]


def _uuids(raw: np.ndarray) -> pa.Array:
    nibbles = np.empty((len(raw), 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 15
    nibbles[:, 12] = 4  # version 4: random
    nibbles[:, 16] = 8 | (nibbles[:, 16] & 3)
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    text[:, UUID_DIGITS] = HEX[nibbles]
    return _fixed_width(text)


def _timestamps(hour: datetime, t_ms: np.ndarray) -> pa.Array:
    text = np.empty((len(t_ms), 24), dtype=np.uint8)
    text[:, :14] = np.frombuffer(f"{hour:%Y-%m-%dT%H}:".encode(), dtype=np.uint8)
    zero = ord("0")
    minute, second, milli = t_ms // 60_000, t_ms // 1000 % 60, t_ms % 1000
    for column, digits in (
        (14, minute // 10),
        (15, minute % 10),
        (17, second // 10),
        (18, second % 10),
        (20, milli // 100),
        (21, milli // 10 % 10),
        (22, milli % 10),
    ):
        text[:, column] = zero + digits
    text[:, 16], text[:, 19], text[:, 23] = ord(":"), ord("."), ord("Z")
    return _fixed_width(text)


def _latencies(latency_us: np.ndarray, fraction: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Whole milliseconds, and `.ddd` where the client reports sub-millisecond precision."""
    whole = pc.cast(pa.array(latency_us // 1000), STR)
    micros = latency_us % 1000
    text = np.empty((len(latency_us), 4), dtype=np.uint8)
    text[:, 0] = ord(".")
    text[:, 1] = ord("0") + micros // 100
    text[:, 2] = ord("0") + micros // 10 % 10
    text[:, 3] = ord("0") + micros % 10
    return whole, pc.if_else(pa.array(fraction), _fixed_width(text), pa.scalar("", STR))


def _render(model: Model, hour: datetime, columns: dict[str, np.ndarray]) -> pa.Array:
    """Every line of one file as newline-terminated text, malformed and blank ones included."""

    def text(vocab: pa.Array, codes: np.ndarray) -> pa.Array:
        return vocab.take(pa.array(codes))

    def token(name: str) -> pa.Array:
        return text(model.tokens, columns[name])

    def constant(value: str) -> pa.Scalar:
        return pa.scalar(value, STR)

    latency_whole, latency_fraction = _latencies(columns["latency_us"], columns["latency_fraction"])
    parts = [
        constant('{"id":"'),
        _uuids(columns["id"]),
        constant('","time":"'),
        _timestamps(hour, columns["t_ms"]),
        constant('","data":{"baseType":"'),
        text(BASE_TYPE_VOCAB, columns["base_type"]),
        constant('"'),
        text(CC_HEAD, columns["cc"]),
        token("first"),
        text(CC_MID, columns["cc"]),
        token("second"),
        text(CC_TAIL, columns["cc"]),
        constant(',"baseData":{"operationName":"'),
        token("operation"),
        constant('"'),
        text(CALLER_HEAD, columns["caller"]),
        token("caller_token"),
        text(CLOSE_IF_PRESENT, columns["caller"]),
        constant(',"requestType":"'),
        text(REQUEST_TYPE_VOCAB, columns["request_type"]),
        constant('","latencyMs":'),
        latency_whole,
        latency_fraction,
        text(STATUS_VOCAB, columns["status"]),
        constant("}"),
        text(SC_SCENARIO_HEAD, columns["sc_scenario"]),
        token("sc_scenario_token"),
        text(CLOSE_IF_PRESENT, columns["sc_scenario"]),
        text(SC_PARTNER_HEAD, columns["sc_partner"]),
        token("sc_partner_token"),
        text(CLOSE_IF_PRESENT, columns["sc_partner"]),
        text(TEST_HEADER_VOCAB, columns["test_header"]),
        text(QUOTE_IS_TEST_VOCAB, columns["quote_is_test"]),
        text(IS_TEST_VOCAB, columns["is_test"]),
        constant('},"ext":{"cloud":{'),
        text(ENVIRONMENT_VOCAB, columns["environment"]),
        constant('"roleInstance":"'),
        text(model.role_vocab, columns["role"]),
        constant('"},"sll":{"libVer":"'),
        text(LIB_VERSION_VOCAB, columns["lib_version"]),
        constant('"}}}\n'),
    ]
    lines = pc.binary_join_element_wise(*parts, constant(""))
    kind = columns["kind"]
    damaged = np.flatnonzero(kind != KIND_EVENT)
    if len(damaged) == 0:
        return lines
    return pc.replace_with_mask(
        lines, pa.array(kind != KIND_EVENT), _damage(lines, damaged, kind, columns["aux"])
    )


def _damage(lines: pa.Array, positions: np.ndarray, kind: np.ndarray, aux: np.ndarray) -> pa.Array:
    """Replacement text for the malformed and blank rows at `positions`, in position order."""
    pieces: list[pa.Array] = []
    placed: list[np.ndarray] = []

    def emit(where: np.ndarray, values: pa.Array) -> None:
        placed.append(where)
        pieces.append(values)

    def at(which: int) -> np.ndarray:
        return positions[kind[positions] == which]

    blank = at(KIND_BLANK)
    emit(blank, pa.array(["\n"] * len(blank), type=STR))
    not_json = at(KIND_NOT_JSON)
    emit(not_json, NOT_JSON_VOCAB.take(pa.array(aux[not_json] % len(NOT_JSON_LINES))))
    truncated = at(KIND_TRUNCATED)
    for index, stop in enumerate(TRUNCATE_AT):
        where = truncated[aux[truncated] % len(TRUNCATE_AT) == index]
        cut = pc.utf8_slice_codeunits(lines.take(pa.array(where)), 0, stop)
        emit(where, pc.binary_join_element_wise(cut, pa.scalar("\n", STR), pa.scalar("", STR)))
    for which, (pattern, replacement) in MALFORMED_REWRITES.items():
        where = at(which)
        emit(
            where,
            pc.replace_substring_regex(
                lines.take(pa.array(where)), pattern, replacement, max_replacements=1
            ),
        )
    order = np.argsort(np.concatenate(placed), kind="stable")
    return pa.concat_arrays([piece.cast(STR) for piece in pieces]).take(pa.array(order))
