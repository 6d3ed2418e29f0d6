-- songplay_songs: each play's song as its event logged it, kept so that a later change of the
-- song catalog matches the play again (05_songplays.sql) without its event file. Its rows go
-- and come with the plays' rows: those songplays replaced, and the staged plays, within the
-- run's time range as there.
delete from songplay_songs
where start_time between (select min(start_time) from staged_plays)
    and (select max(start_time) from staged_plays)
    and (
        songplay_id in (select songplay_id from replaced_plays)
        or songplay_id in (select songplay_id from staged_plays)
    );

insert into songplay_songs (songplay_id, start_time, song, artist, length)
select songplay_id, start_time, song, artist, length
from staged_plays;
