-- staged_plays: the run's plays, the NextSong events of identified users, each with its key.
-- Written once here for songplays and time, and counted by the row-count checks that run after
-- the transforms on the same connection. The key hashes the event (session, item, user, and ts
-- as the integer of epoch milliseconds the log carries, never a formatted timestamp, whose text
-- depends on each engine and on DATESTYLE) so a reload replaces its rows instead of duplicating
-- them. Text compared later (level, song, artist) loses trailing blanks (see 01_artists.sql). A temp table lives until the session ends
-- and Redshift has no ON COMMIT DROP, so a run drops the previous run's first. user_id is cast
-- only through nullif: Redshift does not promise to apply the filter before the cast.
drop table if exists staged_plays;

create temp table staged_plays as
select
    md5(
        cast(session_id as varchar) || '|' || cast(item_in_session as varchar) || '|'
        || user_id || '|' || cast(ts_ms as varchar)
    ) as songplay_id,
    ts as start_time,
    cast(nullif(user_id, '') as integer) as user_id,
    rtrim(level) as level,
    rtrim(song) as song,
    rtrim(artist) as artist,
    length,
    session_id,
    location,
    user_agent
from staging_events
where page = 'NextSong' and nullif(user_id, '') is not null;
