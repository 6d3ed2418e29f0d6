-- staged_plays: the run's plays, the NextSong events of identified users, each with its key.
-- Written once here for songplays and time, and counted by the row-count checks that run after
-- the transforms on the same connection. The key hashes the event (session, item, user, and ts
-- as the integer of epoch milliseconds the log carries, never a formatted timestamp, whose text
-- depends on each engine and on DATESTYLE) so a reload replaces its rows instead of duplicating
-- them. Text compared later (level, song, artist) loses trailing blanks (see 00_song_catalog.sql),
-- and so does the page before it is compared: Redshift would find 'NextSong ' a play anyway.
-- A temp table lives until the session ends and Redshift has no ON COMMIT DROP, so a run drops
-- the previous run's first. user_id is cast only through nullif: Redshift does not promise to
-- apply the filter before the cast. Location and user agent are cut to the characters their
-- columns hold (sql/model.py, cut_to); song and artist are matched as logged, never cut.
drop table if exists staged_plays;

create temp table staged_plays as
select
    md5(
        cast(session_id as varchar) || '|' || cast(item_in_session as varchar) || '|'
        || user_id || '|' || cast(ts_ms as varchar)
    ) as songplay_id,
    ts as start_time,
    cast(nullif(user_id, '') as integer) as user_id,
    rtrim(level, ' ') as level,
    rtrim(song, ' ') as song,
    rtrim(artist, ' ') as artist,
    length,
    session_id,
    cast(left(location, 64) as varchar(256)) as location,
    cast(left(user_agent, 256) as varchar(1024)) as user_agent
from staging_events
where rtrim(page, ' ') = 'NextSong' and nullif(user_id, '') is not null;

-- An event logged twice (the same key, e.g. one line in two files) is one play. Repeats are rare,
-- so only their keys are ranked (a window over every play costs as much as the whole insert):
-- the row kept is chosen by its values, NULLs last, the same row on both warehouses. They are
-- looked for among the plays that share user, session and start time with another, as every
-- play of a repeated key does (the key hashes them): grouping every play on those three
-- fixed-width columns costs less than on the key's text (half the time at 10M events), and
-- leaves few plays to group by key.
drop table if exists staged_play_repeats;

create temp table staged_play_repeats as
with moments as (
    select user_id, session_id, start_time
    from staged_plays
    group by user_id, session_id, start_time
    having count(*) > 1
),

shared as (
    select plays.*
    from staged_plays as plays
    inner join moments
        on moments.user_id = plays.user_id
        and moments.session_id = plays.session_id
        and moments.start_time = plays.start_time
),

final as (
    select *
    from shared
    where songplay_id in (
        select songplay_id
        from shared
        group by songplay_id
        having count(*) > 1
    )
)

select * from final;

delete from staged_plays
where songplay_id in (select songplay_id from staged_play_repeats);

insert into staged_plays (
    songplay_id, start_time, user_id, level, song, artist, length, session_id, location, user_agent
)
with ranked as (
    select
        staged_play_repeats.*,
        row_number() over (
            partition by songplay_id
            order by level nulls last, song nulls last, artist nulls last, length nulls last,
                location nulls last, user_agent nulls last
        ) as pick
    from staged_play_repeats
),

final as (
    select
        songplay_id, start_time, user_id, level, song, artist, length, session_id, location,
        user_agent
    from ranked
    where pick = 1
)

select
    songplay_id, start_time, user_id, level, song, artist, length, session_id, location, user_agent
from final;

drop table staged_play_repeats;
