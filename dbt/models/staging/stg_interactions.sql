-- Raw interactions, typed, event_type lower-cased (the per_user protocol's shift of each
-- user's events is int_interactions_on_timeline).
with

source as (

    select * from {{ source('raw', 'interactions') }}

),

renamed as (

    select
        cast(user_id as varchar) as user_id,
        cast(item_id as varchar) as item_id,
        cast(event_ts as timestamp) as event_ts,
        lower(cast(event_type as varchar)) as event_type,
        cast(played_ms as bigint) as played_ms

    from source

)

select * from renamed
