-- validated: translated rows with their availability and, when they must not be published, why.
-- Grain: as daily_aggregate. Rows of scenario ids missing from `scenarios` are held back here
-- (kept and counted, never published); structural defects are caught by blocking checks.
-- Window: date in [$window_start, $window_end).
select
    *,
    cast(100 as double) * successful_requests / nullif(total_requests, 0) as availability_pct,
    case when not scenario_known then 'unknown scenario' end as hold_reason
from translated
where
    date >= cast(cast($window_start as timestamp) as date)
    and date < cast(cast($window_end as timestamp) as date)
