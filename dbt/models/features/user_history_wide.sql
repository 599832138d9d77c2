{#- Enabled only when `gfm features apply` passes var features_dir (the workspace's features/). -#}
{{ config(
    enabled=var('features_dir', '') != '',
    location=var('features_dir', '') ~ '/user_history.parquet',
) }}
{%- set item_types = var('feature_item_types', []) -%}

-- user_history pivoted for the feature view user_history: one row per user and
-- snapshot, one list of item ids per top-level type (empty when none), so serving can leave
-- out what the user already consumed.
with

history as (

    select * from {{ ref('user_history') }}

),

final as (

    select
        user_id,
        snapshot_ts as event_timestamp,
        {% for item_type in item_types -%}
        coalesce(
            any_value(item_ids) filter (where item_type = '{{ item_type }}'), {{ empty_string_list() }}
        ) as item_ids_{{ item_type }}{{ "," if not loop.last }}
        {% endfor %}
    from history
    group by 1, 2

)

select * from final
