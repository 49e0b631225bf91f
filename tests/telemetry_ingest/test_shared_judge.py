"""Concurrent requests are judged together in one run of the raw stage's SQL, with exactly the
verdicts each would get alone."""

import threading
import time

import pytest

from telemetry_core.landing import classify_event_lines
from telemetry_ingest import ingest
from telemetry_ingest.ingest import SharedJudge
from tests.events import as_lines, wire_event


def request_lines(n: int) -> list[bytes]:
    """Valid and broken lines, different in each request."""
    good = as_lines(*(wire_event(f"r{n}-{i}", time=f"2026-11-20T10:{i:02d}:00.000Z")
                      for i in range(n + 1)))
    broken = [b"{not json", b"", b'{"id": 5}', b'{"id": "x", "time": "soon"}'][: n % 4 + 1]
    return [*good[: n], *broken, *good[n:]]


def judge_concurrently(judge: SharedJudge, requests: list[list[bytes]]) -> list:
    start = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def send(index: int) -> None:
        start.wait()
        try:
            answers[index] = judge.classify(requests[index])
        except Exception as error:  # the test looks at what each request was told
            answers[index] = error

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the SQL runs; the first one is slow, so that the others queue behind it."""
    sizes: list[int] = []

    def counted(lines):  # type: ignore[no-untyped-def]
        sizes.append(len(lines))
        if len(sizes) == 1:
            time.sleep(0.3)
        return classify_event_lines(lines)

    monkeypatch.setattr(ingest, "classify_event_lines", counted)
    return sizes


def test_requests_that_arrive_during_a_run_are_judged_together(runs: list[int]) -> None:
    requests = [request_lines(n) for n in range(8)]
    answers = judge_concurrently(SharedJudge(), requests)
    assert answers == [classify_event_lines(lines) for lines in requests]
    # Whichever came first ran alone; the seven that arrived meanwhile, in one run.
    assert len(runs) == 2
    assert runs[0] in {len(lines) for lines in requests}
    assert sum(runs) == sum(map(len, requests))


def test_a_failed_run_fails_only_the_requests_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def failing_once(lines):  # type: ignore[no-untyped-def]
        calls.append(len(lines))
        if len(calls) == 1:
            time.sleep(0.3)
            raise OSError("engine gone")
        return classify_event_lines(lines)

    monkeypatch.setattr(ingest, "classify_event_lines", failing_once)
    requests = [request_lines(n) for n in range(4)]
    answers = judge_concurrently(SharedJudge(), requests)
    failed = [i for i, answer in enumerate(answers) if isinstance(answer, OSError)]
    # The first run failed, and so did its one request; the others ran next, and were judged.
    assert len(failed) == 1 and len(calls) == 2
    assert calls[0] == len(requests[failed[0]])
    for index, answer in enumerate(answers):
        if index not in failed:
            assert answer == classify_event_lines(requests[index])
