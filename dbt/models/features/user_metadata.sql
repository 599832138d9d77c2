{#- Enabled only when `gfm features apply` passes var features_dir (the workspace's features/). -#}
{{ config(
    enabled=var('features_dir', '') != '',
    location=var('features_dir', '') ~ '/user_metadata.parquet',
) }}

-- Minimal user metadata for the user tower, valid from the account's first trace: the earlier
-- of sign-up and first event (sign-up may be missing in imported data), else the cutoff.
with

users as (

    select * from {{ ref('user_catalog') }}

),

final as (

    select
        user_id,
        coalesce(country, '') as country,
        coalesce(age_bucket, '') as age_bucket,
        coalesce(least(signup_at, first_seen_ts), as_of) as event_timestamp

    from users

)

select * from final
