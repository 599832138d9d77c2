-- Every item, with its top-level item and activity before the cutoff. Counts are as of the
-- cutoff (for evaluation, serving and analysts), not point-in-time training features.
with

items as (

    select * from {{ ref('int_items_rolled_up') }}

),

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}
    where event_ts < {{ timeline_ts('cutoff') }}

),

own_activity as (

    -- events on the item itself
    select
        item_id,
        min(event_ts) as first_seen_ts,
        count(*) filter (
            where event_type in {{ sql_string_list(var('stream_event_types')) }}
        ) as n_streams

    from interactions
    group by 1

),

rolled_up_activity as (

    -- events on a top-level item or any of its episodes: its own and its episodes' activity
    select
        items.top_item_id as item_id,
        min(own_activity.first_seen_ts) as first_seen_ts,
        cast(sum(own_activity.n_streams) as bigint) as n_streams

    from own_activity
    inner join items
        on own_activity.item_id = items.item_id
    group by 1

),

episode_counts as (

    select parent_id as item_id, count(*) as n_episodes
    from items
    where parent_id is not null
    group by 1

),

final as (

    select
        items.item_id,
        items.item_type,
        items.parent_id,
        items.top_item_id,
        items.top_item_type,
        items.is_top_level,
        items.title,
        items.description,
        items.language,
        items.genre,
        items.created_at,
        coalesce(episode_counts.n_episodes, 0) as n_episodes,
        case
            when items.is_top_level then rolled_up_activity.first_seen_ts
            else own_activity.first_seen_ts
        end as first_seen_ts,
        coalesce(
            case
                when items.is_top_level then rolled_up_activity.n_streams
                else own_activity.n_streams
            end,
            0
        ) as n_streams_before_cutoff,
        {{ timeline_ts('cutoff') }} as as_of

    from items
    left join own_activity
        on items.item_id = own_activity.item_id
    left join rolled_up_activity
        on items.item_id = rolled_up_activity.item_id
    left join episode_counts
        on items.item_id = episode_counts.item_id

)

select * from final
