-- translated: daily_aggregate joined with the scenarios and customers reference tables.
-- Grain: as daily_aggregate. Ids match case-insensitively; scenario_key and partner_key are the
-- reference's own ids (null when unknown). Unknown ids stay, flagged by *_known.
-- Window: date in [$window_start, $window_end).
-- Ids are trimmed of all whitespace, not only spaces as a bare trim() does, as DuckDB and Spark
-- SQL both run it (see filtered_events.sql).
with scenario_reference as (
    select
        lower(trim(both ' ' || chr(9) || chr(10) || chr(13) from scenario_id))
            as match_key,
        scenario_id,
        scenario_name,
        service,
        slo_target_pct,
        stid
    from scenarios
),

customer_reference as (
    select
        lower(trim(both ' ' || chr(9) || chr(10) || chr(13) from partner_id))
            as match_key,
        partner_id,
        partner_name,
        tier
    from customers
)

select
    d.*,
    s.scenario_id as scenario_key,
    s.scenario_name,
    s.service,
    s.slo_target_pct,
    s.stid,
    s.scenario_id is not null as scenario_known,
    c.partner_id as partner_key,
    c.partner_name,
    c.tier as partner_tier,
    c.partner_id is not null as partner_known
from daily_aggregate as d
left join scenario_reference as s on s.match_key = lower(
    trim(both ' ' || chr(9) || chr(10) || chr(13) from d.scenario_id)
)
left join customer_reference as c on c.match_key = lower(
    trim(both ' ' || chr(9) || chr(10) || chr(13) from d.partner_id)
)
where
    d.date >= cast(cast($window_start as timestamp) as date)
    and d.date < cast(cast($window_end as timestamp) as date)
