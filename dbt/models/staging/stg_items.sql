with

source as (

    select * from {{ raw_table('items') }}

),

renamed as (

    select
        cast(item_id as string) as item_id,
        lower(cast(item_type as string)) as item_type,
        cast(parent_id as string) as parent_id,
        cast(title as string) as title,
        cast(description as string) as description,
        cast(language as string) as language,
        cast(genre as string) as genre,
        cast(created_at as timestamp) as created_at

    from source

)

select * from renamed
