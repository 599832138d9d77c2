-- Popularity, one source for every reader: streams per user and top-level item in the history
-- window [cutoff - history_days, cutoff) (episodes count for their show). Evaluation's
-- popularity baseline and the ALS/EASE counts read it.
with

interactions as (

    select * from {{ ref('int_interactions_rolled_up') }}

),

final as (

    select
        user_id,
        top_item_id as item_id,
        top_item_type as item_type,
        count(*) as n_streams,
        {{ timeline_ts('cutoff') }} as as_of

    from interactions
    where event_type in {{ sql_string_list(var('stream_event_types')) }}
        and event_ts >= {{ timeline_ts('cutoff') }} - {{ timeline_days('history_days') }}
        and event_ts < {{ timeline_ts('cutoff') }}
    group by 1, 2, 3

)

select * from final
