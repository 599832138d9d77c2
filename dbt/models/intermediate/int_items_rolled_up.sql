-- Each item with the top-level item it rolls up to: an episode to its show, any other item
-- to itself (one level of nesting, ingest/contract.py).
with

items as (

    select * from {{ ref('stg_items') }}

),

rolled_up as (

    select
        items.*,
        coalesce(items.parent_id, items.item_id) as top_item_id,
        coalesce(parents.item_type, items.item_type) as top_item_type,
        items.parent_id is null as is_top_level

    from items
    left join items as parents
        on items.parent_id = parents.item_id

)

select * from rolled_up
