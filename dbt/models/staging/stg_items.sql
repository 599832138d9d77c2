with

source as (

    select * from {{ source('raw', 'items') }}

),

renamed as (

    select
        cast(item_id as varchar) as item_id,
        lower(cast(item_type as varchar)) as item_type,
        cast(parent_id as varchar) as parent_id,
        cast(title as varchar) as title,
        cast(description as varchar) as description,
        cast(language as varchar) as language,
        cast(genre as varchar) as genre,
        cast(created_at as timestamp) as created_at

    from source

)

select * from renamed
