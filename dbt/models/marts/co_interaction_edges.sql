-- The item-item graph of the static layer (DESIGN.md): two top-level items are joined when at
-- least min_edge_support users streamed both in [graph_as_of - history_days, graph_as_of).
-- Heavy-user bound: only a user's max_items_per_user most recent items in the window form
-- pairs, so a user adds at most N*(N-1) directed pairs and the self-join grows linearly with
-- the number of users instead of with the square of their histories.
with

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

user_items as (

    -- one row per user and top-level item they streamed in the window
    select
        user_id,
        top_item_id as item_id,
        top_item_type as item_type,
        max(event_ts) as last_event_ts

    from interactions
    where event_type in {{ sql_string_list(var('edge_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('history_days') }}
        and event_ts < {{ timeline_ts('graph_as_of') }}
    group by 1, 2, 3

),

ranked as (

    select
        *,
        row_number() over (
            partition by user_id order by last_event_ts desc, item_id
        ) as recency_rank

    from user_items

),

bounded as (

    select * from ranked
    where recency_rank <= {{ var('max_items_per_user') | int }}

),

pairs as (

    -- each unordered pair once (src < dst); (user, item) is unique, so count(*) counts users
    select
        src.item_id as src_item_id,
        dst.item_id as dst_item_id,
        src.item_type as src_item_type,
        dst.item_type as dst_item_type,
        count(*) as n_users

    from bounded as src
    inner join bounded as dst
        on src.user_id = dst.user_id
        and src.item_id < dst.item_id
    group by 1, 2, 3, 4
    having count(*) >= {{ var('min_edge_support') | int }}

),

both_directions as (

    select src_item_id, dst_item_id, src_item_type, dst_item_type, n_users from pairs
    union all
    select dst_item_id, src_item_id, dst_item_type, src_item_type, n_users from pairs

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
