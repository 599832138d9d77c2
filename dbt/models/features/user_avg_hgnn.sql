{#-
  Enabled only when `gfm features apply` passes an HGNN version (transforms.feature_store):
    hgnn_embedding_path  the version's item vectors (features/item_hgnn_embedding/<version>.parquet)
    hgnn_as_of           the instant its vectors are stamped (graph_as_of of that run)
    hgnn_dim             the vector width
    hgnn_version         its version id (written beside the vectors, for lineage)
    user_avg_hgnn_path   where this model writes (features/user_avg_hgnn/<version>.parquet)
    feature_item_types   the top-level item types, one avg_hgnn_<type> column each
  so a plain `dbt build` (gfm transform) works before any HGNN output exists. Optionally:
    user_avg_reuse_path   user averages built earlier that hold for this version up to
    user_avg_reuse_until  this snapshot instant (feature_store.core decides when: the same
                          user_history build and settings, and every vector they read is this
                          version's); their rows up to it are kept, and only later snapshots
                          are computed (a daily refresh computes one day).
-#}
{{ config(
    enabled=var('hgnn_embedding_path', '') != '',
    location=var('user_avg_hgnn_path', ''),
) }}
{%- set dim = var('hgnn_dim', 0) | int -%}
{%- set item_types = var('feature_item_types', []) -%}
{%- set reuse_path = var('user_avg_reuse_path', '') -%}

-- The user tower's input (DESIGN.md): at every snapshot of user_history, the mean HGNN
-- vector of the items in the user's history window (timeline.history_days), over all types
-- and per item type. A type the user has none of gets a zero vector and a count of 0; a
-- user with no history at a snapshot has no row (features are null there, as before the
-- first snapshot).
--
-- Snapshots stamped before the vectors' own instant (hgnn_as_of) are left out: a vector is
-- never joined to a time before it existed.
--
-- Cost: DuckDB cannot sum FLOAT[] element-wise, so vectors are summed one column per
-- dimension (a vectorised columnar aggregate), then put back into lists.
with

history as (

    select * from {{ ref('user_history') }}
    where snapshot_ts >= timestamp '{{ var("hgnn_as_of", "1970-01-01 00:00:00") }}'
    {%- if reuse_path %}
        and snapshot_ts > timestamp '{{ var("user_avg_reuse_until") }}'
    {%- endif %}

),

item_vectors as (

    select item_id, embedding
    from {{ parquet_file(var("hgnn_embedding_path", "")) }}

),

history_items as (

    select user_id, snapshot_ts, item_type, {{ unnest_list('item_ids') }} as item_id
    from history

),

type_sums as (

    -- one row per (user, snapshot, item type): the item count and the sum of their vectors
    select
        history_items.user_id,
        history_items.snapshot_ts,
        history_items.item_type,
        count(*) as n_items,
        {% for i in range(1, dim + 1) -%}
        sum({{ list_element('item_vectors.embedding', i) }}) as d{{ i }}{{ "," if not loop.last }}
        {% endfor %}
    from history_items
    inner join item_vectors
        on item_vectors.item_id = history_items.item_id
    group by 1, 2, 3

),

type_means as (

    select
        user_id,
        snapshot_ts,
        item_type,
        n_items,
        {{ float_list(per_dimension('d{i} / n_items', dim)) }} as avg_hgnn

    from type_sums

),

all_means as (

    select
        user_id,
        snapshot_ts,
        sum(n_items) as n_items_all,
        {{ float_list(per_dimension('sum(d{i}) / sum(n_items)', dim)) }} as avg_hgnn_all

    from type_sums
    group by 1, 2

),

per_type as (

    select
        user_id,
        snapshot_ts,
        {% for item_type in item_types -%}
        any_value(avg_hgnn) filter (where item_type = '{{ item_type }}') as avg_hgnn_{{ item_type }},
        coalesce(sum(n_items) filter (where item_type = '{{ item_type }}'), 0) as n_items_{{ item_type }}{{ "," if not loop.last }}
        {% endfor %}
    from type_means
    group by 1, 2

),

final as (

    select
        all_means.user_id,
        all_means.snapshot_ts as event_timestamp,
        all_means.avg_hgnn_all,
        cast(all_means.n_items_all as bigint) as n_items_all,
        {% for item_type in item_types -%}
        coalesce(
            per_type.avg_hgnn_{{ item_type }}, {{ zero_vector(dim) }}
        ) as avg_hgnn_{{ item_type }},
        cast(coalesce(per_type.n_items_{{ item_type }}, 0) as bigint) as n_items_{{ item_type }},
        {% endfor -%}
        '{{ var("hgnn_version", "") }}' as hgnn_version

    from all_means
    left join per_type
        on per_type.user_id = all_means.user_id
        and per_type.snapshot_ts = all_means.snapshot_ts

)

{%- if reuse_path %}

, reused as (

    select
        user_id,
        event_timestamp,
        avg_hgnn_all,
        n_items_all,
        {% for item_type in item_types -%}
        avg_hgnn_{{ item_type }},
        n_items_{{ item_type }},
        {% endfor -%}
        '{{ var("hgnn_version", "") }}' as hgnn_version

    from {{ parquet_file(reuse_path) }}
    where event_timestamp >= timestamp '{{ var("hgnn_as_of", "1970-01-01 00:00:00") }}'
        and event_timestamp <= timestamp '{{ var("user_avg_reuse_until") }}'

)

select * from reused
union all
select * from final

{%- else %}

select * from final

{%- endif %}
