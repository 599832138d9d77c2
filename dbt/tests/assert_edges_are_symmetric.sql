-- Edges are stored in both directions with the same support: no edge lacks its reverse.
with

edges as (

    select * from {{ ref('co_interaction_edges') }}

)

select edges.*
from edges
left join edges as reverse
    on edges.src_item_id = reverse.dst_item_id
    and edges.dst_item_id = reverse.src_item_id
    and edges.n_users = reverse.n_users
    and edges.edge_type = reverse.edge_type
where reverse.src_item_id is null
