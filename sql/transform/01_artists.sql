-- artists: one row per artist_id. Candidates are the staged song files plus the current row, so
-- the chosen row is the same whatever order song files arrive in (never "whichever came last").
-- Text keys and names lose trailing blanks (rtrim): Redshift ignores them when comparing VARCHAR
-- and DuckDB does not, so both warehouses see the same values only without them.
create temp table artists_next as
with candidates as (
    select
        rtrim(artist_id) as artist_id,
        rtrim(artist_name) as name,
        rtrim(artist_location) as location,
        artist_latitude as latitude,
        artist_longitude as longitude
    from staging_songs
    where artist_id is not null

    union all

    select stored.artist_id, stored.name, stored.location, stored.latitude, stored.longitude
    from artists as stored
    inner join (select distinct rtrim(artist_id) as artist_id from staging_songs) as staged
        on staged.artist_id = stored.artist_id
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
using artists_next
where artists.artist_id = artists_next.artist_id;

insert into artists
select * from artists_next;

drop table artists_next;
