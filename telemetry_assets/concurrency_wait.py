"""A step waiting for a pool slot sleeps until its next claim check, instead of spinning.

Dagster 1.13.27's `InstanceConcurrencyContext.interval_to_next_pending_claim_check` returns
`min(0, ...)`, never a positive interval, so a run whose step waits for a `telemetry_compute`
slot polls the instance in a tight loop, a whole core, for as long as the slot stays taken.
The interval it meant is the time to the earliest pending claim's next check. Imported by
definitions.py, so every process that runs steps (CLI, code server, run worker) has it;
tests/telemetry_assets/test_concurrency_wait.py fails once a Dagster release fixes it upstream.
"""

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

UPSTREAM_INTERVAL = InstanceConcurrencyContext.interval_to_next_pending_claim_check


def interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(self._pending_timeouts.values()) - time.time())


InstanceConcurrencyContext.interval_to_next_pending_claim_check = (  # type: ignore[method-assign]
    interval_to_next_pending_claim_check
)
