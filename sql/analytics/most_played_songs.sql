-- The ten songs played most often (plays matched to the song catalog).
with plays as (
    select song_id, count(*) as plays
    from songplays
    where song_id is not null
    group by song_id
),

final as (
    select songs.title, artists.name as artist, plays.plays
    from plays
    inner join songs on songs.song_id = plays.song_id
    left join artists on artists.artist_id = songs.artist_id
)

select title, artist, plays
from final
order by plays desc, title asc nulls last, artist asc nulls last
limit 10
