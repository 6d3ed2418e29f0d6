-- song_catalog: every record of every loaded song file, as the file has it now. A run stages
-- only new and changed song files (the ledger, loaded_files, tells them apart), and a staged
-- file's records replace those it loaded before, whatever they were. catalog_changes keeps
-- both, the records going and the records coming: the songs and artists they name are chosen
-- again (01_artists.sql, 02_songs.sql), and plays loaded earlier that match them are matched
-- again (08_songplays.sql), so a run gives the tables a full load of the files would give.
-- Ids, titles and names lose trailing blanks once, here: Redshift ignores them when comparing
-- VARCHAR and DuckDB does not, so both warehouses see the same values only without them. The
-- characters to trim are spelled out (' '): DuckDB's rtrim without them also strips other
-- white space, such as U+00A0 and U+3000, which Redshift's keeps. The artist's location is cut
-- to the characters its columns hold (sql/model.py, cut_to). A
-- temp table lives until the session ends and Redshift has no ON COMMIT DROP, so a run drops
-- the previous run's first.
drop table if exists catalog_changes;

create temp table catalog_changes as
select song_id, title, artist_id, artist_name, duration
from song_catalog
where source_file in (select source_file from staging_files where kind = 'songs')

union all

select
    rtrim(song_id, ' ') as song_id,
    rtrim(title, ' ') as title,
    rtrim(artist_id, ' ') as artist_id,
    rtrim(artist_name, ' ') as artist_name,
    duration
from staging_songs;

delete from song_catalog
where source_file in (select source_file from staging_files where kind = 'songs');

insert into song_catalog (
    source_file, song_id, title, artist_id, artist_name, artist_location, artist_latitude,
    artist_longitude, year, duration
)
select
    source_file,
    rtrim(song_id, ' ') as song_id,
    rtrim(title, ' ') as title,
    rtrim(artist_id, ' ') as artist_id,
    rtrim(artist_name, ' ') as artist_name,
    cast(rtrim(left(artist_location, 128), ' ') as varchar(512)) as artist_location,
    artist_latitude,
    artist_longitude,
    year,
    duration
from staging_songs;
