{#- The grain of a model is a combination of columns: no two rows share all of them.
    Rows are first grouped by a hash of the columns (one integer: fast on tens of millions of
    rows); only rows whose hash repeats are then compared column by column. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns = combination_of_columns | join(', ') %}

with

repeated_hashes as (

    select hash({{ columns }}) as row_hash
    from {{ model }}
    group by 1
    having count(*) > 1

),

candidates as (

    select {{ columns }}
    from {{ model }}
    where hash({{ columns }}) in (select row_hash from repeated_hashes)

)

select
    {{ columns }},
    count(*) as n_rows
from candidates
group by {{ columns }}
having count(*) > 1

{% endtest %}
