-- songs: one row per song_id, chosen deterministically among the staged files and the current row.
-- Ids and titles lose trailing blanks, as in 01_artists.sql.
create temp table songs_next as
with candidates as (
    select
        rtrim(song_id) as song_id, rtrim(title) as title, rtrim(artist_id) as artist_id, year, duration
    from staging_songs
    where song_id is not null

    union all

    select song_id, title, artist_id, year, duration
    from songs
    where song_id in (select rtrim(song_id) from staging_songs)
),

ranked as (
    select
        candidates.*,
        row_number() over (
            partition by song_id
            order by title nulls last, artist_id nulls last, year desc nulls last, duration nulls last
        ) as pick
    from candidates
),

final as (
    select song_id, title, artist_id, year, duration
    from ranked
    where pick = 1
)

select * from final;

delete from songs
where song_id in (select song_id from songs_next);

insert into songs (song_id, title, artist_id, year, duration)
select song_id, title, artist_id, year, duration
from songs_next;

drop table songs_next;
