{#- Enabled only when `gfm features apply` passes var features_dir (the workspace's features/). -#}
{{ config(
    enabled=var('features_dir', '') != '',
    location=var('features_dir', '') ~ '/item_popularity_daily.parquet',
) }}

-- The feature view item_popularity_daily: for each daily snapshot d in
-- [graph_as_of - early_label_days, cutoff] (the days of user_history) and each top-level
-- item released before d, how much it was streamed just before d, and its age.
--   listener_days_7d / _28d  the sum over the 7 / 28 days before d of the distinct users who
--                            streamed it that day (an episode counts for its show); a user
--                            counts once a day, so a binge does not look like a crowd
--   days_since_release       whole days from its release to d
-- A snapshot sees only events before its own midnight. Items released after the cutoff have
-- no row: read later, they have no listeners yet (the two-tower reads a missing row as 0).
--
-- Cost: one row per (item, day) with streams, then a range join over at most 28 days per
-- snapshot: linear in the streams and in items x snapshot days.
with

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

items as (

    select item_id, created_at
    from {{ ref('item_catalog') }}
    where is_top_level

),

snapshot_spine as (

    {{ snapshot_spine() }}

),

daily_listeners as (

    select
        top_item_id as item_id,
        date_trunc('day', event_ts) as day_ts,
        count(distinct user_id) as n_listeners

    from interactions
    where event_type in {{ sql_string_list(var('stream_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('early_label_days') }}
            - {{ interval_days(28) }}
        and event_ts < {{ timeline_ts('cutoff') }}
    group by 1, 2

),

item_snapshots as (

    select items.item_id, items.created_at, snapshot_spine.snapshot_ts
    from items
    cross join snapshot_spine
    where items.created_at < snapshot_spine.snapshot_ts

),

final as (

    select
        item_snapshots.item_id,
        item_snapshots.snapshot_ts as event_timestamp,
        cast(coalesce(sum(daily_listeners.n_listeners) filter (
            where daily_listeners.day_ts >= item_snapshots.snapshot_ts - {{ interval_days(7) }}
        ), 0) as bigint) as listener_days_7d,
        cast(coalesce(sum(daily_listeners.n_listeners), 0) as bigint) as listener_days_28d,
        -- whole days elapsed (date_diff would count the midnights crossed)
        cast(floor(
            ({{ epoch_seconds('item_snapshots.snapshot_ts') }}
                - {{ epoch_seconds('item_snapshots.created_at') }}) / 86400
        ) as bigint) as days_since_release

    from item_snapshots
    left join daily_listeners
        on daily_listeners.item_id = item_snapshots.item_id
        and daily_listeners.day_ts >= item_snapshots.snapshot_ts - {{ interval_days(28) }}
        and daily_listeners.day_ts < item_snapshots.snapshot_ts
    group by item_snapshots.item_id, item_snapshots.snapshot_ts, item_snapshots.created_at

)

select * from final
