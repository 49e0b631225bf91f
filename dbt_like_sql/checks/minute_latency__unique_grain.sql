-- Latency buckets of minute_latency that appear more than once, or hold no requests.
-- Grain: (scenario_id, partner_id, minute, request_type, cloud_environment, latency_bucket).
select
    scenario_id, partner_id, minute, request_type, cloud_environment, latency_bucket,
    count(*) as copies,
    min(requests) as fewest_requests
from minute_latency
where minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
group by scenario_id, partner_id, minute, request_type, cloud_environment, latency_bucket
having count(*) > 1 or min(requests) <= 0
