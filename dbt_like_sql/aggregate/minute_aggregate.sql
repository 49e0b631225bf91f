-- minute_aggregate: request counts and latency totals per
-- (scenario_id, partner_id, minute, request_type, cloud_environment), from kept events.
-- latency_sum_ms and latency_count make averages mergeable at coarser grains.
-- Window: minute in [$window_start, $window_end).
select
    scenario_id,
    partner_id,
    minute,
    request_type,
    cloud_environment,
    count(*) as total_requests,
    count(case when is_success then 1 end) as successful_requests,
    count(case when not is_success then 1 end) as failed_requests,
    cast(sum(latency_ms) as double) as latency_sum_ms,
    count(latency_ms) as latency_count,
    avg(latency_ms) as avg_latency_ms
from filtered_events
where
    minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)
group by scenario_id, partner_id, minute, request_type, cloud_environment
