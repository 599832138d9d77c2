-- Both ends of every edge are top-level items streamed in [graph_as_of - history_days,
-- graph_as_of): an edge never stands on an interaction at or after its as_of.
with

edges as (

    select * from {{ ref('co_interaction_edges') }}

),

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

streamed_in_window as (

    select distinct top_item_id as item_id
    from interactions
    where event_type in {{ sql_string_list(var('edge_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('history_days') }}
        and event_ts < {{ timeline_ts('graph_as_of') }}

),

items as (

    select * from {{ ref('item_catalog') }}

)

select edges.*
from edges
left join streamed_in_window as src_seen
    on edges.src_item_id = src_seen.item_id
left join streamed_in_window as dst_seen
    on edges.dst_item_id = dst_seen.item_id
left join items as src_item
    on edges.src_item_id = src_item.item_id
left join items as dst_item
    on edges.dst_item_id = dst_item.item_id
where src_seen.item_id is null
    or dst_seen.item_id is null
    or not coalesce(src_item.is_top_level, false)
    or not coalesce(dst_item.is_top_level, false)
    or edges.src_item_type <> src_item.item_type
    or edges.dst_item_type <> dst_item.item_type
