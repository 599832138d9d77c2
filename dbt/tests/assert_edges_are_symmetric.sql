-- Edges are stored in both directions with the same support and type. With (src, dst) unique
-- (tested on the model), that holds exactly when the forward half (src < dst) and the
-- reversed backward half are the same set: compared by size and by a sum of row hashes, one
-- scan instead of a self-join of the whole graph.
with

edges as (

    select * from {{ ref('co_interaction_edges') }}

),

halves as (

    select
        count(*) filter (where src_item_id < dst_item_id) as n_forward,
        count(*) filter (where src_item_id > dst_item_id) as n_backward,
        count(*) filter (where src_item_id = dst_item_id) as n_self_loops,
        coalesce(sum(cast(hash(src_item_id, dst_item_id, n_users, edge_type) as {{ wide_integer() }}))
            filter (where src_item_id < dst_item_id), 0) as forward_checksum,
        coalesce(sum(cast(hash(dst_item_id, src_item_id, n_users, edge_type) as {{ wide_integer() }}))
            filter (where src_item_id > dst_item_id), 0) as backward_checksum

    from edges

)

select * from halves
where n_forward <> n_backward
    or n_self_loops > 0
    or forward_checksum <> backward_checksum
