-- time: one row per distinct start_time of the staged plays (04_staged_plays.sql). week is the
-- ISO week and weekday follows extract(dow) (0 = Sunday), the same on Redshift and DuckDB.
-- The delete looks only within the run's time range (as 08_songplays.sql does): the same rows,
-- read from the blocks of the run's days only, time being sorted on start_time.
-- reads: staged_plays
delete from time
where start_time between (select min(start_time) from staged_plays)
    and (select max(start_time) from staged_plays)
    and start_time in (select start_time from staged_plays);

insert into time (start_time, hour, day, week, month, year, weekday)
with starts as (
    select distinct start_time
    from staged_plays
),

final as (
    select
        start_time,
        extract(hour from start_time) as hour,
        extract(day from start_time) as day,
        extract(week from start_time) as week,
        extract(month from start_time) as month,
        extract(year from start_time) as year,
        extract(dow from start_time) as weekday
    from starts
)

select start_time, hour, day, week, month, year, weekday from final;
