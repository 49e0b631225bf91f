-- minute_aggregate rows whose latency histogram does not hold exactly their latency samples
-- (a stale or partial minute_latency would skew every percentile while the counts look right).
-- Grain: (scenario_id, partner_id, minute, request_type, cloud_environment).
with buckets as (
    select
        scenario_id, partner_id, minute, request_type, cloud_environment,
        sum(requests) as bucketed
    from minute_latency
    where minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
    group by scenario_id, partner_id, minute, request_type, cloud_environment
),

samples as (
    select
        scenario_id, partner_id, minute, request_type, cloud_environment,
        latency_count
    from minute_aggregate
    where
        minute >= cast($window_start as timestamp)
        and minute < cast($window_end as timestamp)
        and latency_count > 0
)

select
    coalesce(s.scenario_id, b.scenario_id) as scenario_id,
    coalesce(s.partner_id, b.partner_id) as partner_id,
    coalesce(s.minute, b.minute) as minute,
    coalesce(s.request_type, b.request_type) as request_type,
    coalesce(s.cloud_environment, b.cloud_environment) as cloud_environment,
    s.latency_count,
    b.bucketed
from samples as s
full outer join buckets as b
    on
        s.scenario_id = b.scenario_id
        and s.partner_id = b.partner_id
        and s.minute = b.minute
        and s.request_type = b.request_type
        and s.cloud_environment = b.cloud_environment
where s.latency_count is null or b.bucketed is null or s.latency_count <> b.bucketed
