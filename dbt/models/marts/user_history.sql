-- Daily user-history snapshots (DESIGN.md): for each day d in [graph_as_of - early_label_days,
-- cutoff] (snapshot_index 0 is graph_as_of, earlier days are negative) and each
-- item type, the distinct top-level items a user consumed in [d - history_days, d), most
-- recent first. Days are counted from graph_as_of, so a snapshot never sees an event at or
-- after its own instant.
--
-- Cost: events are first reduced to one row per (user, item, day); each such row becomes a
-- span of the snapshots where it is the item's latest day in the window (until the item's
-- next day, at most history_days later). A user's spans are gathered and sorted once, and
-- each snapshot keeps the spans that cover it: no per-snapshot regrouping or sorting (an
-- ordered list() per snapshot was 4x slower on 10M interactions).
--
-- With var history_at_events, also one snapshot at every instant t of a stream in
-- [graph_as_of - early_label_days, cutoff) (the two-tower's example instants; midnight is the
-- daily snapshot's), from the events in [midnight of t - history_days, t): the day's snapshot
-- plus that day's events before t. Each such snapshot pairs every event before t with t, so it
-- costs the sum over users of instants x events.
--
-- Incremental: a snapshot depends only on the events before it, and raw data only grows
-- after the cutoff (`gfm import parquet --append`), so a run appends the snapshots after the
-- latest one the table holds and keeps the rest. transforms.warehouse decides when that is
-- sound (same settings, the raw rows before the last cutoff unchanged, the cutoff not moved
-- back) and passes --full-refresh otherwise. Snapshots older than the current window stay:
-- they are still true of their day; every reader selects the instants it needs.
{{ config(materialized='incremental', incremental_strategy='append') }}
{%- set built_until = none -%}
{%- if is_incremental() and execute -%}
    {%- set built_until = run_query('select max(snapshot_ts) from ' ~ this).columns[0].values()[0] -%}
{%- endif %}
with

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

snapshot_spine as (

    select * from ({{ snapshot_spine() }}) as spine
    {%- if built_until %}
    where snapshot_ts > timestamp '{{ built_until }}'
    {%- endif %}

),

daily as (

    -- day_index 0 is [graph_as_of, graph_as_of + 1 day); negative days are before graph_as_of
    select
        user_id,
        top_item_id as item_id,
        top_item_type as item_type,
        cast(floor(
            ({{ epoch_seconds('event_ts') }} - {{ epoch_seconds(timeline_ts('graph_as_of')) }}) / 86400
        ) as bigint) as day_index,
        max(event_ts) as last_event_ts

    from interactions
    where event_type in {{ sql_string_list(var('history_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('history_days') }}
            - {{ timeline_days('early_label_days') }}
        and event_ts < {{ timeline_ts('cutoff') }}
        {%- if built_until %}
        -- the days no snapshot after built_until can see are left out
        and event_ts >= timestamp '{{ built_until }}' - {{ timeline_days('history_days') }}
        {%- endif %}
    group by 1, 2, 3, 4

),

spans as (

    -- the snapshots for which this day is the item's latest day inside the window:
    -- after the day itself, up to the item's next day and at most history_days later
    select
        *,
        greatest(day_index + 1, -{{ var('early_label_days') | int }}) as first_snapshot_index,
        least(
            coalesce(
                lead(day_index) over (partition by user_id, item_id order by day_index),
                {{ var('label_days') | int }}
            ),
            day_index + {{ var('history_days') | int }},
            {{ var('label_days') | int }}
        ) as last_snapshot_index

    from daily

),

user_spans as (

    -- per user and item type, every span, most recent first; the spans of one item never
    -- overlap, so each snapshot sees an item at most once
    select
        user_id,
        item_type,
        {{ ordered_list(
            struct_of(['item_id', 'last_event_ts', 'first_snapshot_index',
                       'last_snapshot_index']),
            [['last_event_ts', 'desc'], ['item_id', 'asc']]
        ) }} as spans

    from spans
    where first_snapshot_index <= last_snapshot_index
    group by 1, 2

),

snapshot_entries as (

    -- filtering a presorted list per snapshot is several times faster than aggregating one
    -- ordered list per snapshot
    select
        user_spans.user_id,
        snapshot_spine.snapshot_ts,
        user_spans.item_type,
        {{ list_filter(
            'user_spans.spans', 'span',
            'snapshot_spine.snapshot_index
                between span.first_snapshot_index and span.last_snapshot_index'
        ) }} as entries

    from user_spans
    cross join snapshot_spine

),

daily_snapshots as (

    select
        user_id,
        snapshot_ts,
        item_type,
        {{ list_map('entries', 'entry', 'entry.item_id') }} as item_ids,
        cast({{ list_length('entries') }} as bigint) as n_items,
        {{ list_element('entries', 1) }}.last_event_ts as last_event_ts

    from snapshot_entries
    where {{ list_length('entries') }} > 0

),

{% if var('history_at_events', false) %}

example_instants as (

    select distinct user_id, event_ts as snapshot_ts
    from interactions
    where event_type in {{ sql_string_list(var('stream_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('early_label_days') }}
        and event_ts < {{ timeline_ts('cutoff') }}
        and event_ts <> date_trunc('day', event_ts)
        {%- if built_until %}
        and event_ts > timestamp '{{ built_until }}'
        {%- endif %}

),

history_events as (

    select user_id, top_item_id as item_id, top_item_type as item_type, event_ts
    from interactions
    where event_type in {{ sql_string_list(var('history_event_types')) }}
        and event_ts >= {{ timeline_ts('graph_as_of') }} - {{ timeline_days('history_days') }}
            - {{ timeline_days('early_label_days') }}
        and event_ts < {{ timeline_ts('cutoff') }}
        {%- if built_until %}
        and event_ts >= timestamp '{{ built_until }}' - {{ timeline_days('history_days') }}
        {%- endif %}

),

instant_items as (

    -- per instant, each item of the window once, with its latest event before the instant
    select
        example_instants.user_id,
        example_instants.snapshot_ts,
        history_events.item_type,
        history_events.item_id,
        max(history_events.event_ts) as last_event_ts

    from example_instants
    inner join history_events
        on history_events.user_id = example_instants.user_id
        and history_events.event_ts < example_instants.snapshot_ts
        and history_events.event_ts
            >= date_trunc('day', example_instants.snapshot_ts) - {{ timeline_days('history_days') }}
    group by 1, 2, 3, 4

),

event_snapshots as (

    select
        user_id,
        snapshot_ts,
        item_type,
        {{ ordered_list('item_id', [['last_event_ts', 'desc'], ['item_id', 'asc']]) }}
            as item_ids,
        count(*) as n_items,
        max(last_event_ts) as last_event_ts

    from instant_items
    group by 1, 2, 3

),

final as (

    select * from daily_snapshots
    union all
    select * from event_snapshots

)

{% else %}

final as (

    select * from daily_snapshots

)

{% endif %}

select * from final
