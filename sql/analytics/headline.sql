-- The key figures: plays, distinct users, and plays matched to a song of the catalog.
select
    count(*) as plays,
    count(distinct user_id) as users,
    count(song_id) as matched_plays
from songplays
