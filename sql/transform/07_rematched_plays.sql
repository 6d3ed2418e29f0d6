-- rematched_plays: plays of earlier runs whose match may have changed with this run's song files:
-- those whose logged song has the title, artist name and duration of a record going or coming, and
-- those matched to a song whose row was chosen again (its artist may have changed, or it may be
-- gone). They are matched again against the catalog as it is now.
-- reads: catalog_changes, song_matches
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

