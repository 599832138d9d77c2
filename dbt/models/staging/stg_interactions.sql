-- Raw interactions, typed. Under timeline.protocol = per_user (leave-last-N-out) every event of
-- a user is shifted by one offset, so that the first stream of the user's N-th most recent
-- distinct top-level item falls exactly at the cutoff: their last N items become the hold-out,
-- everything before them their history, and each user keeps their own order and spacing. The
-- raw files are untouched; event_ts_raw keeps the original instant.
with

source as (

    select * from {{ source('raw', 'interactions') }}

),

renamed as (

    select
        cast(user_id as varchar) as user_id,
        cast(item_id as varchar) as item_id,
        cast(event_ts as timestamp) as event_ts,
        lower(cast(event_type as varchar)) as event_type,
        cast(played_ms as bigint) as played_ms

    from source

)

{% if var('holdout_protocol', 'global') == 'per_user' %}
,

items as (

    select
        cast(item_id as varchar) as item_id,
        coalesce(cast(parent_id as varchar), cast(item_id as varchar)) as top_item_id
    from {{ source('raw', 'items') }}

),

first_streams as (

    -- Each user's distinct top-level items, by the instant of their first stream.
    select renamed.user_id, items.top_item_id, min(renamed.event_ts) as first_stream_ts
    from renamed
    inner join items on renamed.item_id = items.item_id
    where renamed.event_type in {{ sql_string_list(var('stream_event_types')) }}
    group by 1, 2

),

holdout_starts as (

    select user_id, min(first_stream_ts) as holdout_start_ts
    from (
        select
            user_id,
            first_stream_ts,
            row_number() over (
                partition by user_id order by first_stream_ts desc, top_item_id desc
            ) as recency_rank
        from first_streams
    )
    where recency_rank <= {{ var('per_user_holdout_items') | int }}
    group by 1

),

aligned as (

    -- A user without any stream keeps their instants.
    select
        renamed.user_id,
        renamed.item_id,
        renamed.event_ts + coalesce(
            timestamp '{{ var("cutoff") }}' - holdout_starts.holdout_start_ts, interval 0 second
        ) as event_ts,
        renamed.event_type,
        renamed.played_ms,
        renamed.event_ts as event_ts_raw
    from renamed
    left join holdout_starts on renamed.user_id = holdout_starts.user_id

)

select * from aligned

{% else %}

select *, event_ts as event_ts_raw from renamed

{% endif %}
