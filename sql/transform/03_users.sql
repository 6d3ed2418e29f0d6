-- users: one row per identified user, with the attributes of the user's latest event by ts.
-- A stored row is replaced only by an event at least as new, so loading an older day after a
-- newer one changes nothing (loads are order-free). user_id is cast only through nullif: Redshift
-- does not promise to apply the filter before the cast, and '' is no integer. The level loses
-- trailing blanks (see 00_song_catalog.sql); among events at the same moment a known level wins
-- over a NULL one on both warehouses (NULLS LAST spelled out: Redshift puts NULLs first in DESC).
-- Names and gender are cut to the characters their columns hold (sql/model.py, cut_to).
delete from users
where exists (
    select 1
    from staging_events
    where nullif(staging_events.user_id, '') is not null
        and cast(nullif(staging_events.user_id, '') as integer) = users.user_id
        and staging_events.ts >= users.last_seen_at
);

insert into users (user_id, first_name, last_name, gender, level, last_seen_at)
with identified as (
    select
        cast(nullif(user_id, '') as integer) as user_id,
        cast(left(first_name, 64) as varchar(256)) as first_name,
        cast(left(last_name, 64) as varchar(256)) as last_name,
        cast(left(gender, 8) as varchar(32)) as gender,
        rtrim(level, ' ') as level,
        ts,
        session_id,
        item_in_session
    from staging_events
    where nullif(user_id, '') is not null
),

-- Only a user's events at the latest ts can come first (ts is a required field, never null), so
-- the window ranks those few instead of sorting every event of every user. The latest ts is
-- read from staging_events itself: identified read twice would be written out whole first.
latest as (
    select identified.*
    from identified
    inner join (
        select cast(nullif(user_id, '') as integer) as user_id, max(ts) as ts
        from staging_events
        where nullif(user_id, '') is not null
        group by cast(nullif(user_id, '') as integer)
    ) as newest on newest.user_id = identified.user_id and newest.ts = identified.ts
),

ranked as (
    select
        latest.*,
        row_number() over (
            partition by user_id
            order by ts desc, session_id desc, item_in_session desc, level desc nulls last
        ) as recency
    from latest
),

final as (
    select user_id, first_name, last_name, gender, level, ts as last_seen_at
    from ranked
    where recency = 1
        and not exists (select 1 from users where users.user_id = ranked.user_id)
)

select user_id, first_name, last_name, gender, level, last_seen_at from final;
