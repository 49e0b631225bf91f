-- latency_percentiles: p50/p95/p99 per day from the merged latency buckets of daily_latency, the
-- one place percentiles are computed. Three grains, one row each, told apart by `grain`:
--   'detail'           (date, scenario_id, partner_id, request_type, cloud_environment): every
--                      daily_aggregate row, held back or not, under its own ids;
--   'scenario'         (date, scenario_id): the published scenarios, reference ids;
--   'scenario_partner' (date, scenario_id, partner_id): as published.scenario_partner_daily.
-- A percentile is the nearest-rank value: the smallest bucket latency whose cumulative count
-- reaches ceil(p * requests / 100), within (g-1)/(g+1) of the exact value.
-- Window: date in [$window_start, $window_end).
with rows_of_day as (
    select
        date,
        scenario_id,
        partner_id,
        request_type,
        cloud_environment,
        -- Held-back rows have no published ids, so they fall in a null group that is dropped.
        case when hold_reason is null then scenario_key end as published_scenario_id,
        case when hold_reason is null then coalesce(partner_key, partner_id) end
            as published_partner_id
    from validated
    where
        date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
),

buckets as (
    select
        case
            when grouping(r.scenario_id) = 0 then 'detail'
            when grouping(r.published_partner_id) = 0 then 'scenario_partner'
            else 'scenario'
        end as grain,
        r.date,
        coalesce(r.scenario_id, r.published_scenario_id) as scenario_id,
        coalesce(r.partner_id, r.published_partner_id) as partner_id,
        r.request_type,
        r.cloud_environment,
        l.latency_bucket,
        max(l.latency_ms) as latency_ms,
        sum(l.requests) as requests
    from daily_latency as l
    inner join rows_of_day as r
        on
            l.date = r.date
            and l.scenario_id = r.scenario_id
            and l.partner_id = r.partner_id
            and l.request_type = r.request_type
            and l.cloud_environment = r.cloud_environment
    group by grouping sets (
        (r.date, r.scenario_id, r.partner_id, r.request_type, r.cloud_environment,
            l.latency_bucket),
        (r.date, r.published_scenario_id, l.latency_bucket),
        (r.date, r.published_scenario_id, r.published_partner_id, l.latency_bucket)
    )
),

cumulative as (
    select
        grain,
        date,
        scenario_id,
        partner_id,
        request_type,
        cloud_environment,
        latency_ms,
        sum(requests) over (
            partition by grain, date, scenario_id, partner_id, request_type, cloud_environment
            order by latency_bucket
            rows between unbounded preceding and current row
        ) as requests_up_to_bucket,
        sum(requests) over (
            partition by grain, date, scenario_id, partner_id, request_type, cloud_environment
        ) as measured_requests
    from buckets
    where scenario_id is not null
)

select
    grain,
    date,
    scenario_id,
    partner_id,
    request_type,
    cloud_environment,
    cast(max(measured_requests) as bigint) as measured_requests,
    min(case when requests_up_to_bucket >= ceil(50 * measured_requests / 100.0)
        then latency_ms end) as p50_latency_ms,
    min(case when requests_up_to_bucket >= ceil(95 * measured_requests / 100.0)
        then latency_ms end) as p95_latency_ms,
    min(case when requests_up_to_bucket >= ceil(99 * measured_requests / 100.0)
        then latency_ms end) as p99_latency_ms
from cumulative
group by all
