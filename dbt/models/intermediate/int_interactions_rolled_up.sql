-- Every interaction with the top-level item it counts for: edges, histories and the hold-out
-- all use top_item_id (DESIGN.md, "Consumption, types, episodes").
with

interactions as (

    select * from {{ ref('int_interactions_on_timeline') }}

),

items as (

    select * from {{ ref('int_items_rolled_up') }}

),

rolled_up as (

    select
        interactions.user_id,
        interactions.item_id,
        items.item_type,
        items.top_item_id,
        items.top_item_type,
        interactions.event_ts,
        interactions.event_type,
        interactions.played_ms

    from interactions
    inner join items
        on interactions.item_id = items.item_id

)

select * from rolled_up
