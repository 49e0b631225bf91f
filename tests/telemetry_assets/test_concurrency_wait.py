"""A step waiting for a pool slot sleeps until its next claim check (see concurrency_wait.py)."""

import time
from types import SimpleNamespace

from telemetry_assets.concurrency_wait import (
    UPSTREAM_INTERVAL,
    interval_to_next_pending_claim_check,
)


def waiting(seconds_to_next_check: float) -> SimpleNamespace:
    """The state of a context with one step waiting for a slot."""
    return SimpleNamespace(_pending_claims={"raw_events"},
                           _pending_timeouts={"raw_events": time.time() + seconds_to_next_check})


def test_a_waiting_step_sleeps_until_its_next_claim_check():
    assert 1.5 < interval_to_next_pending_claim_check(waiting(2.0)) <= 2.0
    assert interval_to_next_pending_claim_check(waiting(-1.0)) == 0.0  # overdue: check now
    assert interval_to_next_pending_claim_check(SimpleNamespace(
        _pending_claims=set(), _pending_timeouts={})) == 0.0


def test_dagster_still_returns_no_wait_so_the_fix_is_still_needed():
    # When this fails, Dagster waits between claim checks itself: remove concurrency_wait.py.
    assert UPSTREAM_INTERVAL(waiting(2.0)) <= 0
