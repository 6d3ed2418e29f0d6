-- songplays: every staged play (04_staged_plays.sql); a reload replaces its rows. Rows go by
-- (user, session, start time) as well as by key: every play sharing those is in the same day's
-- file, so all are staged again, and rows keyed by an earlier scheme of songplay_id go too.
-- song_id and artist_id are filled where the event matches a song on title, artist name and
-- duration, and stay null otherwise.
-- The delete looks only within the run's time range: a row of a staged key has that play's
-- start_time (the key hashes ts) and the other rows match a staged start_time, so the same
-- rows go as without the bound, and Redshift, songplays being sorted on start_time, can skip
-- the blocks outside the run's days instead of scanning the whole fact table. No staged play,
-- no range: nothing goes, as before.
delete from songplays
where songplays.start_time between (select min(start_time) from staged_plays)
    and (select max(start_time) from staged_plays)
    and (
        songplay_id in (select songplay_id from staged_plays)
        or exists (
            select 1
            from staged_plays
            where staged_plays.user_id = songplays.user_id
                and staged_plays.session_id = songplays.session_id
                and staged_plays.start_time = songplays.start_time
        )
    );

insert into songplays (
    songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
)
with catalog as (
    -- Every run stages the whole song catalog, and a song is matched on the artist name its own
    -- file credits (one artist_id may be credited as "X" on one song and "X feat. Y" on another).
    -- Where several songs share title, artist name and duration, a play takes the smallest
    -- song_id: one row per match key, so the join below never multiplies a play.
    select rtrim(title) as title, rtrim(artist_name) as artist_name, duration,
        min(rtrim(song_id)) as song_id
    from staging_songs
    group by rtrim(title), rtrim(artist_name), duration
),

final as (
    select
        plays.songplay_id,
        plays.start_time,
        plays.user_id,
        plays.level,
        songs.song_id,
        songs.artist_id,
        plays.session_id,
        plays.location,
        plays.user_agent
    from staged_plays as plays
    left join catalog
        on catalog.title = plays.song
        and catalog.artist_name = plays.artist
        and catalog.duration = plays.length
    left join songs on songs.song_id = catalog.song_id
)

select
    songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
from final;
