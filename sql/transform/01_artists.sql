-- artists: one row per artist_id credited by any song file of the catalog (00_song_catalog.sql).
-- The ids the run's song files credit, now or before, are chosen again from every file that
-- credits them, so the row is the same whatever order the files arrive in (never "whichever
-- came last"), and an id no file credits any more goes.
-- reads: catalog_changes
create temp table artists_next as
with candidates as (
    select
        artist_id,
        artist_name as name,
        artist_location as location,
        artist_latitude as latitude,
        artist_longitude as longitude
    from song_catalog
    where artist_id in (select artist_id from catalog_changes)
)

select artist_id, name, location, latitude, longitude
from (
    select
        candidates.*,
        row_number() over (
            partition by artist_id
            order by name nulls last, location nulls last, latitude nulls last, longitude nulls last
        ) as pick
    from candidates
) as ranked
where pick = 1;

delete from artists
where artist_id in (select artist_id from catalog_changes);

insert into artists
select * from artists_next;

drop table artists_next;
