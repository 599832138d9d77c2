{#- int_interactions_on_timeline (timeline.protocol per_user): `events` is a CTE of
    interactions; the model defines `items` (int_items_rolled_up) beside it. -#}
{% macro per_user_last_items_start(events, n_items) %}
    -- Per user, the first stream of their n-th most recent distinct top-level item (items
    -- ordered by their first stream).
    select user_id, min(first_stream_ts) as start_ts
    from (
        select
            user_id,
            first_stream_ts,
            row_number() over (
                partition by user_id order by first_stream_ts desc, top_item_id desc
            ) as recency_rank
        from (
            select {{ events }}.user_id, items.top_item_id, min({{ events }}.event_ts) as first_stream_ts
            from {{ events }}
            inner join items on {{ events }}.item_id = items.item_id
            where {{ events }}.event_type in {{ sql_string_list(var('stream_event_types')) }}
            group by 1, 2
        )
    )
    where recency_rank <= {{ n_items | int }}
    group by 1
{% endmacro %}
