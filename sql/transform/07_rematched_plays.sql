-- rematched_plays: plays of earlier runs whose match may have changed with this run's song files:
-- those whose logged song has the title, artist name and duration of a record going or coming, and
-- those matched to a song whose row was chosen again (its artist may have changed, or it may be
-- gone). They are matched again against the catalog as it is now, and keep their start time so
-- that 08_songplays.sql updates them by key and start time.
-- The work is bounded by the songs that changed: the first plays are found by a join with the
-- few changed match keys; the others in songplays by their song, then in songplay_songs by key
-- and start time. Both tables are distributed and sorted on start_time, so on Redshift that join
-- stays on each slice and reads only the blocks of those plays' times, where a join on the key
-- alone would redistribute both tables whole. No changed song, no play: nothing is matched again.
-- reads: catalog_changes, song_matches
drop table if exists rematched_plays;

create temp table rematched_plays as
with changed_keys as (
    select distinct title, artist_name, duration
    from catalog_changes
),

played_as_changed as (
    select played.songplay_id, played.start_time, played.song, played.artist, played.length
    from songplay_songs as played
    inner join changed_keys
        on changed_keys.title = played.song
        and changed_keys.artist_name = played.artist
        and changed_keys.duration = played.length
),

matched_to_changed as (
    select songplay_id, start_time
    from songplays
    where song_id in (select song_id from catalog_changes)
),

played_as_matched as (
    select played.songplay_id, played.start_time, played.song, played.artist, played.length
    from songplay_songs as played
    inner join matched_to_changed as matched
        on matched.start_time = played.start_time
        and matched.songplay_id = played.songplay_id
    where played.start_time between (select min(start_time) from matched_to_changed)
        and (select max(start_time) from matched_to_changed)
),

affected as (
    select songplay_id, start_time, song, artist, length from played_as_changed

    union

    select songplay_id, start_time, song, artist, length from played_as_matched
),

final as (
    select affected.songplay_id, affected.start_time, song_matches.song_id, song_matches.artist_id
    from affected
    left join song_matches
        on song_matches.title = affected.song
        and song_matches.artist_name = affected.artist
        and song_matches.duration = affected.length
)

select songplay_id, start_time, song_id, artist_id from final;
