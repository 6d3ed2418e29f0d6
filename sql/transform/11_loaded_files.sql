-- loaded_files: the ledger of the source files loaded, brought up to date with the files this
-- run staged (staging_files, written by the run with the version it saw of each): a later run
-- stages only files that are new or changed since. A song file's records are counted from
-- staging_songs; an event file's come from staging, where the warehouse counts them.
delete from loaded_files
where source_file in (select source_file from staging_files);

insert into loaded_files (source_file, kind, size, version, records, flow_run_id, loaded_at)
select
    files.source_file,
    files.kind,
    files.size,
    files.version,
    case when files.kind = 'songs' then coalesce(songs.records, 0) else files.records end,
    files.flow_run_id,
    files.loaded_at
from staging_files as files
left join (
    select source_file, count(*) as records
    from staging_songs
    group by source_file
) as songs on songs.source_file = files.source_file;
