-- replaced_plays: the stored plays this run writes again, which 08_songplays.sql and
-- 10_songplay_songs.sql delete. Rows go by (user, session, start time): every play sharing those
-- is in the same day's file, so all are staged again. That takes in every row of a staged play's
-- key (the key hashes the play's session, item, user id as logged and ts, of which the row's
-- session_id, user_id and start_time are the values) and rows keyed by an earlier scheme of
-- songplay_id. Matching on those three columns alone, not on the key's text as well, spares the
-- warehouse hashing every staged key where no stored row is in the run's range (a first load, a
-- new day). It looks only within the run's time range: a row that goes matches a staged
-- start_time, so the same rows go as without the bound, and Redshift, songplays being sorted on
-- start_time, can skip the blocks outside the run's days instead of scanning the whole fact
-- table. No staged play, no range: nothing goes.
-- reads: staged_plays
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

