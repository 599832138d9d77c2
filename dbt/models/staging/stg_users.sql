with

source as (

    select * from {{ raw_table('users') }}

),

renamed as (

    select
        cast(user_id as string) as user_id,
        cast(country as string) as country,
        cast(age_bucket as string) as age_bucket,
        cast(signup_at as timestamp) as signup_at

    from source

)

select * from renamed
