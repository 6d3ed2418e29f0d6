-- artists: one row per artist_id. Candidates are the staged song files plus the current row, so
-- the chosen row is the same whatever order song files arrive in (never "whichever came last").
create temp table artists_next as
with candidates as (
    select
        artist_id,
        artist_name as name,
        artist_location as location,
        artist_latitude as latitude,
        artist_longitude as longitude
    from staging_songs
    where artist_id is not null

    union all

    select artist_id, name, location, latitude, longitude
    from artists
    where artist_id in (select artist_id from staging_songs)
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
