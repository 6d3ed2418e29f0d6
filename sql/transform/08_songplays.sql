-- songplays: every staged play (04_staged_plays.sql); a reload replaces its rows. The rows
-- going (replaced_plays) are deleted within their time range; plays of earlier runs whose song
-- match changed take their new match (rematched_plays); then the staged plays are inserted,
-- song_id and artist_id filled where the event matches a song on title, artist name and
-- duration (song_matches), null otherwise. The update joins on the key and start time, within
-- the start times of the plays it changes: songplays is distributed and sorted on start_time,
-- so Redshift joins on each slice and reads only the blocks of those times.
-- reads: rematched_plays, replaced_plays, song_matches, staged_plays
delete from songplays
where songplays.start_time between (select min(start_time) from replaced_plays)
    and (select max(start_time) from replaced_plays)
    and songplay_id in (select songplay_id from replaced_plays);

update songplays
set song_id = rematched_plays.song_id, artist_id = rematched_plays.artist_id
from rematched_plays
where songplays.start_time between (select min(start_time) from rematched_plays)
    and (select max(start_time) from rematched_plays)
    and songplays.start_time = rematched_plays.start_time
    and songplays.songplay_id = rematched_plays.songplay_id;

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
