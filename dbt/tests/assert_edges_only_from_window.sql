-- Both ends of every edge are top-level items of the stated type that were streamed in
-- [graph_as_of - history_days, graph_as_of): an edge never stands on an interaction at or
-- after its as_of (checked per item, after reducing the edges to their distinct ends).
-- (A test refers to each model where it reads it: no import CTEs.)
with

edge_ends as (

    -- edges are symmetric (assert_edges_are_symmetric), so the sources are all the ends
    select distinct src_item_id as item_id, src_item_type as item_type
    from {{ ref('co_interaction_edges') }}

),

streamed_in_window as (

    select distinct top_item_id as item_id
    from {{ ref('int_interactions_rolled_up') }}
    where event_type in {{ sql_string_list(var('edge_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('history_days') }}
        and event_ts < {{ timeline_ts('graph_as_of') }}

)

select
    edge_ends.*,
    streamed_in_window.item_id is not null as streamed_in_window,
    items.is_top_level,
    items.item_type as catalog_item_type

from edge_ends
left join streamed_in_window
    on edge_ends.item_id = streamed_in_window.item_id
left join {{ ref('item_catalog') }} as items
    on edge_ends.item_id = items.item_id
where streamed_in_window.item_id is null
    or not coalesce(items.is_top_level, false)
    or edge_ends.item_type is distinct from items.item_type
