-- time: one row per distinct songplay start_time. week is the ISO week and weekday follows
-- extract(dow) (0 = Sunday), the same on Redshift and DuckDB.
delete from time
where start_time in (
    select ts
    from staging_events
    where page = 'NextSong' and nullif(user_id, '') is not null
);

insert into time (start_time, hour, day, week, month, year, weekday)
with starts as (
    select distinct ts as start_time
    from staging_events
    where page = 'NextSong' and nullif(user_id, '') is not null
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
