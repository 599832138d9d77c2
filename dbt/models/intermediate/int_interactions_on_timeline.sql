-- Every interaction on the evaluation's timeline. Under timeline.protocol = global that is its
-- raw instant. Under per_user (leave-last-N-out) every event of a user is shifted by one
-- offset, so that the first stream of the user's N-th most recent distinct top-level item
-- falls exactly at the cutoff: their last N items become the hold-out, everything before them
-- their history, and each user keeps their own order and spacing. The raw files are
-- untouched; event_ts_raw keeps the original instant.
with

interactions as (

    select * from {{ ref('stg_interactions') }}

),

{% if var('holdout_protocol', 'global') == 'per_user' %}

items as (

    select * from {{ ref('int_items_rolled_up') }}

),

first_streams as (

    -- Each user's distinct top-level items, by the instant of their first stream.
    select interactions.user_id, items.top_item_id, min(interactions.event_ts) as first_stream_ts
    from interactions
    inner join items on interactions.item_id = items.item_id
    where interactions.event_type in {{ sql_string_list(var('stream_event_types')) }}
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

on_timeline as (

    -- A user without any stream keeps their instants.
    select
        interactions.user_id,
        interactions.item_id,
        interactions.event_ts + coalesce(
            timestamp '{{ var("cutoff") }}' - holdout_starts.holdout_start_ts, interval 0 second
        ) as event_ts,
        interactions.event_type,
        interactions.played_ms,
        interactions.event_ts as event_ts_raw
    from interactions
    left join holdout_starts on interactions.user_id = holdout_starts.user_id

)

{% else %}

on_timeline as (

    select *, event_ts as event_ts_raw from interactions

)

{% endif %}

select * from on_timeline
