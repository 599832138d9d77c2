"""Heterogeneous GraphSAGE (2T-HGNN 4.1.2): per relation, a max-pooling aggregator
max(relu(W_r h + b)); update h' = W_self h + sum_r W'_r h_N(r); outputs L2-normalised.

A per-type linear encoder first maps the 384-d text vectors to hidden_dim: messages are then
hidden_dim wide, which is what bounds the memory of a step (one message per edge and layer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import SAGEConv

from training.hgnn.config import HGNNConfig
from training.hgnn.graph import Relation


def relation_key(relation: Relation) -> str:
    return "__".join(relation)


class HeteroSAGELayer(nn.Module):
    def __init__(self, node_types: list[str], relations: list[Relation], in_dim: int, out_dim: int):
        super().__init__()
        self.self_lin = nn.ModuleDict({t: nn.Linear(in_dim, out_dim) for t in node_types})
        self.convs = nn.ModuleDict({
            relation_key(r): SAGEConv((in_dim, in_dim), out_dim, aggr="max", project=True,
                                      root_weight=False, bias=False)
            for r in relations
        })

    def forward(
        self, x: dict[str, torch.Tensor], edges: dict[Relation, torch.Tensor],
        keep_messages: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        out = {t: self.self_lin[t](h) for t, h in x.items()}  # (n_t, out_dim)
        for relation, edge_index in edges.items():
            src, _, dst = relation
            key = relation_key(relation)
            if key in self.convs and src in x and dst in x:
                message = self.convs[key]((x[src], x[dst]), edge_index)  # (n_dst, out_dim)
                if keep_messages is not None and dst in keep_messages:
                    message = message * keep_messages[dst]
                out[dst] = out[dst] + message
        return out


class HeteroGraphSAGE(nn.Module):
    def __init__(self, node_types: list[str], relations: list[Relation], in_dim: int,
                 config: HGNNConfig):
        super().__init__()
        self.encoder = nn.ModuleDict({t: nn.Linear(in_dim, config.hidden_dim) for t in node_types})
        self.layer1 = HeteroSAGELayer(node_types, relations, config.hidden_dim, config.hidden_dim)
        self.layer2 = HeteroSAGELayer(node_types, relations, config.hidden_dim, config.out_dim)
        self.dropout = config.dropout

    def forward(
        self, x: dict[str, torch.Tensor], edges: dict[Relation, torch.Tensor],
        keep_messages: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """keep_messages: per node type, (n_t, 1) of 0/1; 0 makes a node see no neighbours, as
        a new item does (cold-start training)."""
        h = {t: F.relu(self.encoder[t](v)) for t, v in x.items()}  # (n_t, hidden_dim)
        h = self.layer1(h, edges, keep_messages)  # (n_t, hidden_dim)
        h = {t: F.dropout(F.relu(v), self.dropout, self.training) for t, v in h.items()}
        h = self.layer2(h, edges, keep_messages)  # (n_t, out_dim)
        return {t: F.normalize(v, dim=-1) for t, v in h.items()}
