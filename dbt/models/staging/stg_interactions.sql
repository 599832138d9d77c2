-- Raw interactions, typed, event_type lower-cased (the per_user protocol's shift of each
-- user's events is int_interactions_on_timeline).
with

source as (

    select * from {{ raw_table('interactions') }}

),

renamed as (

    select
        cast(user_id as string) as user_id,
        cast(item_id as string) as item_id,
        cast(event_ts as timestamp) as event_ts,
        lower(cast(event_type as string)) as event_type,
        cast(played_ms as bigint) as played_ms

    from source

)

select * from renamed
