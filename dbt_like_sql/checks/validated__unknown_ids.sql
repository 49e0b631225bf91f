-- Rows of validated whose scenario id is missing from `scenarios` (held back from publication)
-- or whose partner id is missing from `customers` (published without a partner name).
select
    date, scenario_id, partner_id, scenario_known, partner_known, hold_reason,
    total_requests
from validated
where
    date >= cast(cast($window_start as timestamp) as date)
    and date < cast(cast($window_end as timestamp) as date)
    and (not scenario_known or not partner_known)
