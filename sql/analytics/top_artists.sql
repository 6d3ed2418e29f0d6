-- The ten artists played most often (plays matched to the artist catalog).
with plays as (
    select artist_id, count(*) as plays
    from songplays
    where artist_id is not null
    group by artist_id
),

final as (
    select artists.name as artist, plays.plays
    from plays
    inner join artists on artists.artist_id = plays.artist_id
)

select artist, plays
from final
order by plays desc, artist asc nulls last
limit 10
