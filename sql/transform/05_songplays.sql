-- songplays: every staged play (04_staged_plays.sql); a reload replaces its rows. Rows go by
-- (user, session, start time): every play sharing those is in the same day's file, so all are
-- staged again. That takes in every row of a staged play's key (the key hashes the play's
-- session, item, user id as logged and ts, of which the row's session_id, user_id and
-- start_time are the values) and rows keyed by an earlier scheme of songplay_id. Matching on
-- those three columns alone, not on the key's text as well, spares the warehouse hashing every
-- staged key where no stored row is in the run's range (a first load, a new day).
-- song_id and artist_id are filled where the event matches a song on title, artist name and
-- duration, and stay null otherwise.
-- The delete looks only within the run's time range: a row that goes matches a staged
-- start_time, so the same rows go as without the bound, and Redshift, songplays being sorted
-- on start_time, can skip the blocks outside the run's days instead of scanning the whole fact
-- table. No staged play, no range: nothing goes, as before. The rows going are noted first
-- (replaced_plays, whose range bounds the delete in turn), for songplay_songs too
-- (07_songplay_songs.sql).
drop table if exists replaced_plays;

create temp table replaced_plays as
select songplay_id, start_time
from songplays
where songplays.start_time between (select min(start_time) from staged_plays)
    and (select max(start_time) from staged_plays)
    and exists (
        select 1
        from staged_plays
        where staged_plays.user_id = songplays.user_id
            and staged_plays.session_id = songplays.session_id
            and staged_plays.start_time = songplays.start_time
    );

delete from songplays
where songplays.start_time between (select min(start_time) from replaced_plays)
    and (select max(start_time) from replaced_plays)
    and songplay_id in (select songplay_id from replaced_plays);

-- Where several songs share title, artist name and duration, a play takes the smallest song_id
-- (one row per match key, so a join never multiplies a play). A song is matched on the artist
-- name its own file credits (one artist_id may be credited as "X" on one song and "X feat. Y"
-- on another), which the catalog keeps.
drop table if exists song_matches;

create temp table song_matches as
select catalog.title, catalog.artist_name, catalog.duration, songs.song_id, songs.artist_id
from (
    select title, artist_name, duration, min(song_id) as song_id
    from song_catalog
    group by title, artist_name, duration
) as catalog
inner join songs on songs.song_id = catalog.song_id;

-- Plays of earlier runs whose match may have changed with this run's song files: those whose
-- logged song has the title, artist name and duration of a record going or coming, and those
-- matched to a song whose row was chosen again (its artist may have changed, or it may be
-- gone). They are matched again against the catalog as it is now.
drop table if exists rematched_plays;

create temp table rematched_plays as
with affected as (
    select played.songplay_id, played.song, played.artist, played.length
    from songplay_songs as played
    inner join (select distinct title, artist_name, duration from catalog_changes) as changed
        on changed.title = played.song
        and changed.artist_name = played.artist
        and changed.duration = played.length

    union

    select played.songplay_id, played.song, played.artist, played.length
    from songplay_songs as played
    inner join songplays on songplays.songplay_id = played.songplay_id
    where songplays.song_id in (select song_id from catalog_changes)
)

select affected.songplay_id, song_matches.song_id, song_matches.artist_id
from affected
left join song_matches
    on song_matches.title = affected.song
    and song_matches.artist_name = affected.artist
    and song_matches.duration = affected.length;

update songplays
set song_id = rematched_plays.song_id, artist_id = rematched_plays.artist_id
from rematched_plays
where songplays.songplay_id = rematched_plays.songplay_id;

insert into songplays (
    songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent
)
select
    plays.songplay_id,
    plays.start_time,
    plays.user_id,
    plays.level,
    song_matches.song_id,
    song_matches.artist_id,
    plays.session_id,
    plays.location,
    plays.user_agent
from staged_plays as plays
left join song_matches
    on song_matches.title = plays.song
    and song_matches.artist_name = plays.artist
    and song_matches.duration = plays.length;
