{#- Enabled only when `gfm features apply` passes var features_dir (the workspace's features/). -#}
{{ config(
    enabled=var('features_dir', '') != '',
    location=var('features_dir', '') ~ '/item_metadata.parquet',
) }}

-- Minimal item metadata for the item tower, valid from the item's release (created_at).
-- Only static attributes: activity counts in item_catalog are as of the cutoff and would leak
-- the label window into training examples.
with

items as (

    select * from {{ ref('item_catalog') }}

),

final as (

    select
        item_id,
        item_type,
        top_item_id,
        top_item_type,
        is_top_level,
        coalesce(language, '') as language,
        coalesce(genre, '') as genre,
        created_at as event_timestamp

    from items

)

select * from final
