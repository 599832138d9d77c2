-- The first and the last user-history snapshots (graph_as_of and cutoff) equal an independent
-- recomputation from the interactions in [d - history_days, d): same users, types, items and
-- order, so no snapshot uses an interaction at or after its instant, nor one that left the
-- window. (tests/integration/test_warehouse_rules.py checks every snapshot on small data; the
-- model's own tests check last_event_ts < snapshot_ts on every row.)
with

boundary_snapshots as (

    select {{ timeline_ts('graph_as_of') }} as snapshot_ts
    union all
    select {{ timeline_ts('cutoff') }}

),

user_items as (

    select
        interactions.user_id,
        boundary_snapshots.snapshot_ts,
        interactions.top_item_type as item_type,
        interactions.top_item_id as item_id,
        max(interactions.event_ts) as last_event_ts

    from {{ ref('int_interactions_rolled_up') }} as interactions
    inner join boundary_snapshots
        on interactions.event_ts >= boundary_snapshots.snapshot_ts - {{ timeline_days('history_days') }}
        and interactions.event_ts < boundary_snapshots.snapshot_ts
    where interactions.event_type in {{ sql_string_list(var('history_event_types')) }}
    group by 1, 2, 3, 4

),

recomputed as (

    select
        user_id,
        snapshot_ts,
        item_type,
        {{ ordered_list('item_id', [['last_event_ts', 'desc'], ['item_id', 'asc']]) }}
            as item_ids

    from user_items
    group by 1, 2, 3

),

stored as (

    select history.user_id, history.snapshot_ts, history.item_type, history.item_ids
    from {{ ref('user_history') }} as history
    inner join boundary_snapshots
        on history.snapshot_ts = boundary_snapshots.snapshot_ts

)

select
    coalesce(stored.user_id, recomputed.user_id) as user_id,
    coalesce(stored.snapshot_ts, recomputed.snapshot_ts) as snapshot_ts,
    coalesce(stored.item_type, recomputed.item_type) as item_type,
    stored.item_ids as stored_item_ids,
    recomputed.item_ids as recomputed_item_ids

from stored
full outer join recomputed
    on stored.user_id = recomputed.user_id
    and stored.snapshot_ts = recomputed.snapshot_ts
    and stored.item_type = recomputed.item_type
where stored.item_ids is distinct from recomputed.item_ids
