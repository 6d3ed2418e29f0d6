-- song_matches: the song each title, artist name and duration matches. Where several songs
-- share them, a play takes the smallest song_id (one row per match key, so a join never
-- multiplies a play). A song is matched on the artist name its own file credits (one artist_id
-- may be credited as "X" on one song and "X feat. Y" on another), which the catalog keeps.
drop table if exists song_matches;

create temp table song_matches as
select catalog.title, catalog.artist_name, catalog.duration, songs.song_id, songs.artist_id
from (
    select title, artist_name, duration, min(song_id) as song_id
    from song_catalog
    group by title, artist_name, duration
) as catalog
inner join songs on songs.song_id = catalog.song_id;

