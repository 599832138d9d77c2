-- The evaluation hold-out (DESIGN.md): who streamed which top-level item in
-- [cutoff, cutoff + holdout_days). Nothing here feeds a feature or a model.
with

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

holdout_streams as (

    select * from interactions
    where event_type in {{ sql_string_list(var('stream_event_types')) }}
        and event_ts >= {{ timeline_ts('cutoff') }}
        and event_ts < {{ timeline_ts('holdout_end') }}

),

final as (

    select
        user_id,
        top_item_id as item_id,
        top_item_type as item_type,
        min(event_ts) as first_event_ts,
        count(*) as n_streams

    from holdout_streams
    group by 1, 2, 3

)

select * from final
