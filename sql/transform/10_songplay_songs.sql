-- songplay_songs: each play's song as its event logged it, kept so that a later change of the
-- song catalog matches the play again (08_songplays.sql) without its event file. Its rows go
-- and come with the plays' rows: a row has the key and start time of its play in songplays
-- (by which 07_rematched_plays.sql reads it, start_time being both tables' distribution key),
-- written and deleted together, so the rows going are those of the plays replaced
-- (replaced_plays, which holds every stored play of a staged key), within their time range
-- as there; none on a first load or a new day.
-- reads: replaced_plays, staged_plays
delete from songplay_songs
where start_time between (select min(start_time) from replaced_plays)
    and (select max(start_time) from replaced_plays)
    and songplay_id in (select songplay_id from replaced_plays);

insert into songplay_songs (songplay_id, start_time, song, artist, length)
select songplay_id, start_time, song, artist, length
from staged_plays;
