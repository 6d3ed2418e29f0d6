-- songs: one row per song_id of the catalog (00_song_catalog.sql). The ids of the run's song
-- files, now or before, are chosen again, deterministically, among every file that has them;
-- an id no file has any more goes.
-- reads: catalog_changes
create temp table songs_next as
with candidates as (
    select song_id, title, artist_id, year, duration
    from song_catalog
    where song_id in (select song_id from catalog_changes)
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
where song_id in (select song_id from catalog_changes);

insert into songs (song_id, title, artist_id, year, duration)
select song_id, title, artist_id, year, duration
from songs_next;

drop table songs_next;
