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

    select artist_id, name, location, latitude, longitude
    from artists
    where artist_id in (select rtrim(artist_id) from staging_songs)
),

ranked as (
    select
        candidates.*,
        row_number() over (
            partition by artist_id
            order by name nulls last, location nulls last, latitude nulls last, longitude nulls last
        ) as pick
    from candidates
),

final as (
    select artist_id, name, location, latitude, longitude
    from ranked
    where pick = 1
)

select * from final;

delete from artists
where artist_id in (select artist_id from artists_next);

insert into artists (artist_id, name, location, latitude, longitude)
select artist_id, name, location, latitude, longitude
from artists_next;

drop table artists_next;
