-- songplays: every staged play (04_staged_plays.sql); a reload replaces its rows. Rows go by
-- (user, session, start time) as well as by key: every play sharing those is in the same day's
-- file, so all are staged again, and rows keyed by an earlier scheme of songplay_id go too.
-- song_id and artist_id are filled where the event matches a song on title, artist name and
-- duration, and stay null otherwise.
delete from songplays
where songplay_id in (select songplay_id from staged_plays)
    or exists (
        select 1
        from staged_plays
        where staged_plays.user_id = songplays.user_id
            and staged_plays.session_id = songplays.session_id
            and staged_plays.start_time = songplays.start_time
    );

insert into songplays (
    songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
)
with catalog as (
    -- Every run stages the whole song catalog, and a song is matched on the artist name its own
    -- file credits (one artist_id may be credited as "X" on one song and "X feat. Y" on another).
    select distinct rtrim(song_id) as song_id, rtrim(title) as title,
        rtrim(artist_name) as artist_name, duration
    from staging_songs
),

matched as (
    select
        plays.*,
        catalog.song_id,
        row_number() over (
            partition by plays.songplay_id order by catalog.song_id nulls last
        ) as pick
    from staged_plays as plays
    left join catalog
        on catalog.title = plays.song
        and catalog.artist_name = plays.artist
        and catalog.duration = plays.length
),

final as (
    select
        matched.songplay_id,
        matched.start_time,
        matched.user_id,
        matched.level,
        songs.song_id,
        songs.artist_id,
        matched.session_id,
        matched.location,
        matched.user_agent
    from matched
    left join songs on songs.song_id = matched.song_id
    where matched.pick = 1
)

select
    songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
from final;
