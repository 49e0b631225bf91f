-- translated: daily_aggregate joined with the scenarios and customers reference tables.
-- Grain: as daily_aggregate. Ids match case-insensitively; scenario_key and partner_key are the
-- reference's own ids (null when unknown). Unknown ids stay, flagged by *_known.
-- Window: date in [$window_start, $window_end).
-- Ids are trimmed of all whitespace, not only spaces as DuckDB's trim() does, by two anchored
-- regexp_replace calls that DuckDB and Spark SQL run alike (see filtered_events.sql).
with scenario_reference as (
    select
        lower(regexp_replace(regexp_replace(scenario_id, '^[ \t\r\n]+', ''), '[ \t\r\n]+$', ''))
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
        lower(regexp_replace(regexp_replace(partner_id, '^[ \t\r\n]+', ''), '[ \t\r\n]+$', ''))
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
    regexp_replace(regexp_replace(d.scenario_id, '^[ \t\r\n]+', ''), '[ \t\r\n]+$', '')
)
left join customer_reference as c on c.match_key = lower(
    regexp_replace(regexp_replace(d.partner_id, '^[ \t\r\n]+', ''), '[ \t\r\n]+$', '')
)
where
    d.date >= cast(cast($window_start as timestamp) as date)
    and d.date < cast(cast($window_end as timestamp) as date)
