-- objective_daily: attainment of every objective per scenario and day, availability and latency
-- alike. Grain: (date, scenario_id, objective). Only validated rows that are not held back.
-- availability: good = successful requests (exact).
-- latency: good = requests at or under threshold_ms, counted from the merged latency buckets of
--   daily_latency: a bucket is good when its representative latency is. Only the one bucket
--   that straddles the threshold ([g^i, g^(i+1)) holding it) can be misjudged, so the exact
--   share lies within attainment_error_pct points of attainment_pct.
-- Window: date in [$window_start, $window_end).
with rows_of_day as (
    select
        date,
        scenario_id,
        partner_id,
        request_type,
        cloud_environment,
        scenario_key,
        total_requests,
        successful_requests
    from validated
    where
        hold_reason is null
        and date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
),

availability as (
    select
        r.date,
        o.scenario_id,
        o.objective,
        cast(sum(r.total_requests) as bigint) as total_requests,
        cast(sum(r.successful_requests) as bigint) as good_requests,
        cast(0 as bigint) as uncertain_requests
    from rows_of_day as r
    inner join objectives as o on r.scenario_key = o.scenario_id and o.kind = 'availability'
    group by r.date, o.scenario_id, o.objective
),

latency as (
    select
        r.date,
        o.scenario_id,
        o.objective,
        cast(sum(l.requests) as bigint) as total_requests,
        cast(sum(case when l.latency_ms <= o.threshold_ms then l.requests else 0 end) as bigint)
            as good_requests,
        cast(sum(case
            when
                l.latency_bucket <> $zero_bucket
                and power(cast($latency_growth as double), l.latency_bucket) <= o.threshold_ms
                and power(cast($latency_growth as double), l.latency_bucket + 1) > o.threshold_ms
                then l.requests
            else 0
        end) as bigint) as uncertain_requests
    from daily_latency as l
    inner join rows_of_day as r
        on
            l.date = r.date
            and l.scenario_id = r.scenario_id
            and l.partner_id = r.partner_id
            and l.request_type = r.request_type
            and l.cloud_environment = r.cloud_environment
    inner join objectives as o on r.scenario_key = o.scenario_id and o.kind = 'latency'
    group by r.date, o.scenario_id, o.objective
),

attained as (
    select * from availability
    union all
    select * from latency
)

select
    a.date,
    a.scenario_id,
    a.objective,
    o.kind,
    o.threshold_ms,
    o.target_pct,
    a.total_requests,
    a.good_requests,
    cast(100 as double) * a.good_requests / nullif(a.total_requests, 0) as attainment_pct,
    cast(100 as double) * a.uncertain_requests / nullif(a.total_requests, 0) as attainment_error_pct,
    cast(100 as double) * a.good_requests / nullif(a.total_requests, 0) >= o.target_pct as objective_met
from attained as a
inner join objectives as o on a.scenario_id = o.scenario_id and a.objective = o.objective
