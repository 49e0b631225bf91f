-- sla_statements: per reference scenario and partner, the month's requests outside and inside
-- the maintenance windows that cover them (docs/statements.md).
-- Events spell ids as they like: scenarios match the reference trimmed and lower-cased; so do
-- partners, a partner missing from customers keeping its trimmed, lower-cased id.
-- maintenance_covers: (scenario_key, partner_key, start_at, end_at), one row per window and the
-- pair it covers, keyed like the events. A minute is excluded when its start lies in
-- [start_at, end_at) of any of them.
-- Window: minute in [$window_start, $window_end).
with traffic as (
    select
        s.scenario_id,
        coalesce(c.partner_id, lower(trim(m.partner_id))) as partner_id,
        lower(trim(m.scenario_id)) as scenario_key,
        lower(trim(m.partner_id)) as partner_key,
        m.minute,
        cast(sum(m.total_requests) as bigint) as total_requests,
        cast(sum(m.successful_requests) as bigint) as successful_requests
    from minute_aggregate as m
    inner join scenarios as s on lower(trim(m.scenario_id)) = lower(trim(s.scenario_id))
    left join customers as c on lower(trim(m.partner_id)) = lower(trim(c.partner_id))
    where
        m.minute >= cast($window_start as timestamp)
        and m.minute < cast($window_end as timestamp)
    group by
        s.scenario_id, coalesce(c.partner_id, lower(trim(m.partner_id))),
        lower(trim(m.scenario_id)), lower(trim(m.partner_id)), m.minute
),

flagged as (
    select
        t.scenario_id,
        t.partner_id,
        t.minute,
        t.total_requests,
        t.successful_requests,
        -- Overlapping windows would repeat the minute: counted once, as excluded or not.
        count(w.start_at) as covering_windows
    from traffic as t
    left join maintenance_covers as w
        on t.scenario_key = w.scenario_key
        and t.partner_key = w.partner_key
        and t.minute >= w.start_at
        and t.minute < w.end_at
    group by
        t.scenario_id, t.partner_id, t.scenario_key, t.partner_key, t.minute, t.total_requests,
        t.successful_requests
)

select
    scenario_id,
    partner_id,
    cast(sum(case when covering_windows = 0 then total_requests else 0 end) as bigint)
        as total_requests,
    cast(sum(case when covering_windows = 0 then successful_requests else 0 end) as bigint)
        as successful_requests,
    cast(sum(case when covering_windows > 0 then total_requests else 0 end) as bigint)
        as excluded_requests
from flagged
group by scenario_id, partner_id
order by partner_id, scenario_id
