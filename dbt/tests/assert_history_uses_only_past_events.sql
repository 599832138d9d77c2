-- Every item in a user-history snapshot stamped d has an event by that user in
-- [d - history_days, d): no snapshot uses an interaction at or after its own instant.
with

history as (

    select * from {{ ref('user_history_90d') }}

),

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}
    where event_type in {{ sql_string_list(var('history_event_types')) }}

),

entries as (

    select
        user_id,
        snapshot_ts,
        item_type,
        unnest(item_ids) as item_id

    from history

)

select entries.*
from entries
where not exists (
    select 1
    from interactions
    where interactions.user_id = entries.user_id
        and interactions.top_item_id = entries.item_id
        and interactions.top_item_type = entries.item_type
        and interactions.event_ts >= entries.snapshot_ts - {{ timeline_days('history_days') }}
        and interactions.event_ts < entries.snapshot_ts
)
