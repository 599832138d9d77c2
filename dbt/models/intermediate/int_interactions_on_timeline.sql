-- Every interaction on the evaluation's timeline. Under timeline.protocol = global that is its
-- raw instant. Under per_user (leave-last-N-out) every event of a user is shifted by one
-- offset, so that the first stream of the user's N-th most recent distinct top-level item
-- falls exactly at the cutoff: their last N items become the hold-out, everything before them
-- their history, and each user keeps their own order and spacing. The raw files are
-- untouched; event_ts_raw keeps the original instant.
--
-- per_user_skip_items K > 0 (the validation split of `gfm tune` under per_user): each user's
-- events from the first stream of their K-th most recent item on are dropped first, so the
-- protocol then holds out the N items just before the evaluation's hold-out, which is never read.
with

{% if var('holdout_protocol', 'global') == 'per_user' %}

all_interactions as (

    select * from {{ ref('stg_interactions') }}

),

items as (

    select * from {{ ref('int_items_rolled_up') }}

),

{% if var('per_user_skip_items', 0) | int > 0 %}

skipped_starts as (

    {{ per_user_last_items_start('all_interactions', var('per_user_skip_items')) }}

),

interactions as (

    -- A user without any stream keeps all their events.
    select all_interactions.*
    from all_interactions
    left join skipped_starts on all_interactions.user_id = skipped_starts.user_id
    where skipped_starts.start_ts is null or all_interactions.event_ts < skipped_starts.start_ts

),

{% else %}

interactions as (

    select * from all_interactions

),

{% endif %}

holdout_starts as (

    {{ per_user_last_items_start('interactions', var('per_user_holdout_items')) }}

),

on_timeline as (

    -- A user without any stream keeps their instants.
    select
        interactions.user_id,
        interactions.item_id,
        interactions.event_ts + coalesce(
            timestamp '{{ var("cutoff") }}' - holdout_starts.start_ts, interval 0 second
        ) as event_ts,
        interactions.event_type,
        interactions.played_ms,
        interactions.event_ts as event_ts_raw
    from interactions
    left join holdout_starts on interactions.user_id = holdout_starts.user_id

)

{% else %}

interactions as (

    select * from {{ ref('stg_interactions') }}

),

on_timeline as (

    select *, event_ts as event_ts_raw from interactions

)

{% endif %}

select * from on_timeline
