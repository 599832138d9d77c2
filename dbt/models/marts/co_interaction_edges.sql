-- The item-item graph of the static layer (DESIGN.md): two top-level items are joined when at
-- least min_edge_support users streamed both in [graph_as_of - history_days, graph_as_of).
-- Heavy-user bound: only a user's max_items_per_user most recent items in the window form
-- pairs, so a user adds at most N*(N-1) directed pairs and the self-join grows linearly with
-- the number of users instead of with the square of their histories.
with

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

items as (

    select * from {{ ref('int_items_rolled_up') }}

),

item_keys as (

    -- integer keys for top-level items: the self-join and its aggregation run on integers,
    -- which is several times faster than on the string ids
    select
        item_id,
        item_type,
        row_number() over (order by item_id) as item_key

    from items
    where is_top_level

),

user_items as (

    -- one row per user and top-level item they streamed in the window
    select
        user_id,
        top_item_id as item_id,
        max(event_ts) as last_event_ts

    from interactions
    where event_type in {{ sql_string_list(var('edge_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('history_days') }}
        and event_ts < {{ timeline_ts('graph_as_of') }}
    group by 1, 2

),

ranked as (

    select
        user_items.user_id,
        item_keys.item_key,
        row_number() over (
            partition by user_items.user_id
            order by user_items.last_event_ts desc, user_items.item_id
        ) as recency_rank

    from user_items
    inner join item_keys
        on user_items.item_id = item_keys.item_id

),

bounded as (

    select * from ranked
    where recency_rank <= {{ var('max_items_per_user') | int }}

),

pairs as (

    -- each unordered pair once (src < dst); (user, item) is unique, so count(*) counts users
    select
        src.item_key as src_key,
        dst.item_key as dst_key,
        count(*) as n_users

    from bounded as src
    inner join bounded as dst
        on src.user_id = dst.user_id
        and src.item_key < dst.item_key
    group by 1, 2
    having count(*) >= {{ var('min_edge_support') | int }}

),

named_pairs as (

    select
        src.item_id as src_item_id,
        dst.item_id as dst_item_id,
        src.item_type as src_item_type,
        dst.item_type as dst_item_type,
        pairs.n_users

    from pairs
    inner join item_keys as src
        on pairs.src_key = src.item_key
    inner join item_keys as dst
        on pairs.dst_key = dst.item_key

),

both_directions as (

    select src_item_id, dst_item_id, src_item_type, dst_item_type, n_users from named_pairs
    union all
    select dst_item_id, src_item_id, dst_item_type, src_item_type, n_users from named_pairs

),

final as (

    select
        src_item_id,
        dst_item_id,
        src_item_type,
        dst_item_type,
        least(src_item_type, dst_item_type)
            || '__' || greatest(src_item_type, dst_item_type) as edge_type,
        n_users,
        {{ timeline_ts('graph_as_of') }} as as_of

    from both_directions

)

select * from final
