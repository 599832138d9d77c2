"""Configuration of the HGNN: one dataclass, saved inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HGNNConfig:
    hidden_dim: int = 128
    out_dim: int = 128
    dropout: float = 0.1
    # Max-margin loss (PinSage, 2T-HGNN): relu(s_neg - s_pos + margin) on cosine scores.
    margin: float = 0.3
    # Negatives per positive edge, of the positive's node type: half uniform over that type,
    # half drawn in proportion to degree^0.75 ("harder": popular items that are not a neighbour,
    # so the model cannot score well by popularity alone).
    negatives_per_edge: int = 8
    # Share of nodes that, at each training step, see none of their neighbours: the model
    # learns to place a node from its text alone where its neighbours would put it, which is
    # what a new item (no edges yet) needs at inference. Measured (small, validation cutoff):
    # 0.3 lowers val_auc (0.73 vs 0.77 after 8 epochs) and hgnn_knn's new-item HR@10; 0 kept.
    cold_start_node_rate: float = 0.0
    # Where negatives come from: "connected" = only nodes with training edges; "all" = every
    # node of the type. A node without edges (an item released after graph_as_of) is unlabelled,
    # not a negative: drawn as one, it is only ever pushed away from the connected items, and a
    # new item's text-only vector ends up far from everyone (hgnn_knn new-item HR@10 0).
    negative_pool: str = "connected"
    # Weight of an alignment loss 1 - cos(text-only vector, graph vector (no gradient)) over the
    # batch's nodes: pulls the text-only path (what an edge-less item gets) to where the graph
    # puts the same item. 0 = off. Measured: 1.0 wrecks the graph path, which shares the
    # text path's weights (val_auc 0.57).
    text_alignment_weight: float = 0.0
    # Vectors of items without edges (released after graph_as_of, or never co-streamed):
    # - text_knn: the mean HGNN vector of the `inductive_knn` connected items of the same type
    #   whose text is closest (cosine): where the item's future neighbours most likely are;
    # - regressor: a small MLP text -> HGNN vector fitted on the connected items
    #   (`regressor_loss`: cosine = regress each item's own vector; ranking = also place it by
    #   the link-prediction margin against the graph vectors, as positive and as negative);
    # - text_path: the model's own text-only path (no messages).
    # Measured (small, validation cutoff; cold validation AUC of a text-only candidate, see
    # cold_link_metrics): text_path 0.14, regressor 0.58, text_knn 0.72 (k 10), 0.74 (k 20),
    # 0.80 (k 50, but hubs: new items crowd every list and discovery HR@10 drops).
    inductive_vectors: str = "text_knn"
    inductive_knn: int = 20
    regressor_epochs: int = 300
    regressor_loss: str = "cosine"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 4096  # positive edges per step
    max_epochs: int = 15
    patience: int = 3  # epochs without val_mrr improvement before stopping
    val_fraction: float = 0.1  # of the undirected edges of each edge type
    max_val_edges_per_type: int = 2_000
    val_negatives: int = 100  # per validation edge, for AUC and MRR
    # Multi-link sampler (2T-HGNN 4.1.3): each epoch, every edge type is under-sampled to the
    # count of the rarest one (never below min_edges_per_type_per_epoch), redrawn every epoch.
    multi_link_sampler: bool = True
    min_edges_per_type_per_epoch: int = 4_096
    # full = one forward over the whole graph per step; sampled = uniform neighbour sampling
    # around each batch (bounded memory); auto = full while the graph has at most
    # full_batch_max_edges message-passing edges.
    batch_mode: str = "auto"
    full_batch_max_edges: int = 1_000_000
    fanouts: list[int] = field(default_factory=lambda: [10, 10])
    inference_batch_nodes: int = 4_096
    time_budget_s: float = 900.0  # training stops at the end of the step that exceeds it
    # `gfm refresh` retrains the static layer (edges' graph, HGNN) once the graph it serves is
    # this many days behind the refreshed timeline's graph_as_of (or with --static); otherwise
    # it keeps it, as the paper's Table 3 found daily retraining buys nothing. 0 = only with
    # --static. Not part of the version id (it says when to train, not how).
    refresh_every_days: int = 7
    seed: int = 0
    threads: int = 0  # torch threads; 0 = torch's default
    # auto | cpu | cuda: auto = CUDA when torch sees a GPU, else the CPU (gfm/device.py). The
    # vectors are the same up to float tolerance; not part of the version id (like threads).
    device: str = "auto"
