-- Every user, with activity before the cutoff (as of the cutoff, not point-in-time).
with

users as (

    select * from {{ ref('stg_users') }}

),

interactions as (

    select * from {{ ref('int_interactions_on_timeline') }}
    where event_ts < {{ timeline_ts('cutoff') }}

),

activity as (

    select
        user_id,
        min(event_ts) as first_seen_ts,
        count(*) as n_events,
        count(*) filter (
            where event_type in {{ sql_string_list(var('stream_event_types')) }}
        ) as n_streams

    from interactions
    group by 1

),

final as (

    select
        users.user_id,
        users.country,
        users.age_bucket,
        users.signup_at,
        activity.first_seen_ts,
        coalesce(activity.n_events, 0) as n_events_before_cutoff,
        coalesce(activity.n_streams, 0) as n_streams_before_cutoff,
        {{ timeline_ts('cutoff') }} as as_of

    from users
    left join activity
        on users.user_id = activity.user_id

)

select * from final
