-- Rows of validated whose availability is missing or outside 0-100 %.
select *
from validated
where
    date >= cast(cast($window_start as timestamp) as date)
    and date < cast(cast($window_end as timestamp) as date)
    and (availability_pct is null or availability_pct < 0 or availability_pct > 100)
