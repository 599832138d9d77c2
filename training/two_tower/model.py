"""Two towers into one space: items of every type through one tower, users through the other.

Item tower: HGNN vector + text vector + item type, language, genre, and (optionally) a learned
item-id vector (type-agnostic: the type is one input among others, not a separate tower).
User tower: the per-type means of the HGNN vectors of the history window
(timeline.history_days), their counts, the mean over all types, country and age bucket, and
(with id vectors) the per-type recency-weighted means of the history items' learned id
vectors, which the item tower shares.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from training.two_tower.config import TwoTowerConfig
from training.two_tower.data import POPULARITY_FEATURES, IdLists, ItemInputs, UserInputs


def mlp(in_dim: int, dims: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, out_dim in enumerate(dims):
        layers.append(nn.Linear(in_dim, out_dim))
        if i < len(dims) - 1:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
        in_dim = out_dim
    return nn.Sequential(*layers)


class Categoricals(nn.Module):
    """One embedding per categorical feature; index 0 is 'unknown'."""

    def __init__(self, vocab_sizes: dict[str, int], dim: int):
        super().__init__()
        self.names = sorted(vocab_sizes)
        self.embeddings = nn.ModuleDict({n: nn.Embedding(vocab_sizes[n], dim) for n in self.names})
        self.out_dim = dim * len(self.names)

    def forward(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.embeddings[n](codes[n]) for n in self.names], dim=-1)


def _present(vectors: torch.Tensor) -> torch.Tensor:
    """(b, 1): 1.0 where a row holds a vector, 0.0 where it is all zeros (missing)."""
    return (vectors != 0).any(dim=-1, keepdim=True).to(vectors.dtype)


def _known(u: UserInputs) -> torch.Tensor:
    """(b,) 1.0 for a user with some history or a known categorical feature, else 0.0."""
    known = u.n_by_type.sum(-1) > 0
    for codes in u.codes.values():
        known = known | (codes != 0)
    return known.to(u.avg_all.dtype)


class TwoTowerModel(nn.Module):
    def __init__(self, config: TwoTowerConfig, hgnn_dim: int, text_dim: int, item_types: list[str],
                 item_vocab_sizes: dict[str, int], user_vocab_sizes: dict[str, int],
                 n_item_ids: int = 0):
        super().__init__()
        self.item_types = list(item_types)
        self.use_hgnn = config.use_hgnn
        self.history_decay = config.history_decay
        self.id_dropout = config.item_id_dropout
        self.id_dim = config.item_id_dim if n_item_ids > 0 else 0
        n_types = len(item_types)
        graph_dim = hgnn_dim if self.use_hgnn else 0
        if self.id_dim:
            # Row 0: unknown item (new since training): a zero vector that never learns.
            self.ids = nn.Embedding(n_item_ids + 1, self.id_dim, padding_idx=0)
            nn.init.normal_(self.ids.weight, std=0.1)
            with torch.no_grad():
                self.ids.weight[0].zero_()
        # log q(item) per id index (the "training_share" prior; set by the trainer)
        self.register_buffer("log_q", torch.zeros(n_item_ids + 1))
        self.popularity_prior = config.popularity_prior
        # The "recent" prior: p(item) from its recent-popularity features (log1p each).
        self.popularity_net = (mlp(len(POPULARITY_FEATURES), [16, 1], 0.0)
                               if config.popularity_prior == "recent" else None)
        self.temperature = config.temperature

        self.item_categoricals = Categoricals(item_vocab_sizes, config.categorical_dim)
        # With HGNN inputs, one more input each says whether the vector is there (an example
        # before graph_as_of, or a user without history, has none: zeros are not a vector).
        has_graph = 1 if self.use_hgnn else 0
        self.item_net = mlp(graph_dim + has_graph + text_dim + self.item_categoricals.out_dim
                            + self.id_dim, config.tower_dims, config.dropout)
        self.user_categoricals = Categoricals(user_vocab_sizes, config.categorical_dim)
        user_in = (graph_dim * (n_types + 1) + has_graph + n_types
                   + self.user_categoricals.out_dim + self.id_dim * (n_types + 1))
        self.user_net = mlp(user_in, config.tower_dims, config.dropout)
        # The user's weight on the popularity prior, from the same inputs (softplus: >= 0).
        self.prior_net = nn.Linear(user_in, 1) if self.popularity_prior != "none" else None
        # Linear paths from the item's id vector and the user's pooled history ids straight to
        # the outputs, beside the MLPs: the score gains an item-to-item term (FISM).
        self.id_skip = bool(config.id_skip and self.id_dim)
        if self.id_skip:
            out = config.tower_dims[-1]
            self.item_id_skip = nn.Linear(self.id_dim, out, bias=False)
            self.user_id_skip = nn.Linear(self.id_dim, out, bias=False)
        # The user's weight on the towers' cosine, from the same inputs (softplus: >= 0), 1 at
        # the start (zero weights, bias softplus^-1(1)).
        self.user_scale_net = nn.Linear(user_in, 1) if config.user_scale else None
        if self.user_scale_net is not None:
            nn.init.zeros_(self.user_scale_net.weight)
            nn.init.constant_(self.user_scale_net.bias, math.log(math.e - 1.0))
        # The hgnn_knn path: the user's weight on it, from the same inputs (softplus: >= 0).
        self.hgnn_skip_net = (nn.Linear(user_in, 1) if config.hgnn_skip and self.use_hgnn
                              else None)
        self.hgnn_dim = hgnn_dim
        # (without a prior an unknown user would have nothing left to be ranked by)
        self.unknown_user_prior_only = config.unknown_user_prior_only and self.has_prior
        # What an item the model never trained on borrows (config new_item_knn): per learned-id
        # index, the trained item's unit text vector, type code (-1: no trained item there) and
        # unit tower output, set by set_new_item_reference after each epoch.
        self.new_item_knn = config.new_item_knn if self.id_dim else 0
        self.new_item_vector = config.new_item_vector
        self.new_item_hgnn_weight = float(config.new_item_hgnn_weight)
        # Per item-type code, solved for the catalogue being scored (training.two_tower.
        # new_items); not saved with the model.
        self.new_item_hgnn_weights: dict[int, float] | None = None
        if self.new_item_knn:
            self.register_buffer("reference_text", torch.zeros(n_item_ids + 1, text_dim))
            self.register_buffer("reference_type", torch.full((n_item_ids + 1,), -1))
            self.register_buffer("reference_items",
                                 torch.zeros(n_item_ids + 1, config.tower_dims[-1]))

    @property
    def device(self) -> torch.device:
        return self.log_q.device

    @property
    def hgnn_skip(self) -> bool:
        return self.hgnn_skip_net is not None

    @property
    def out_dim(self) -> int:
        """Width of `items` / `users`: the tower output, then the hgnn_knn path's dims."""
        return self.item_net[-1].out_features + (self.hgnn_dim if self.hgnn_skip else 0)

    @property
    def unit_vectors(self) -> bool:
        """Whether item and user vectors are unit length (a plain cosine model)."""
        return not (self.has_prior or self.hgnn_skip or self.user_scale_net is not None)

    def items(self, v: ItemInputs) -> torch.Tensor:
        """(b, out_dim): the unit tower output, then (hgnn_skip) the unit HGNN vector. When
        scoring (not training), an item without a learned id takes its tower output from its
        text neighbours among the trained items (new_item_knn)."""
        z = self._tower_items(v)
        if self.new_item_knn and not self.training:
            z = self._borrowed_for_new(z, v)
        if self.hgnn_skip:  # a missing vector (zeros) stays zeros: no hgnn_knn score
            graph = F.normalize(v.hgnn, dim=-1)
            if self.id_dim and not self.training:
                graph = graph * self._new_item_hgnn_scale(v).to(graph.dtype)
            z = torch.cat([z, graph], dim=-1)  # (b, d + hgnn_dim)
        return z

    def _new_item_hgnn_scale(self, v: ItemInputs) -> torch.Tensor:
        """(b, 1) the hgnn_knn path's weight: 1 for a trained item; for one the model never
        trained on, its type's solved weight (new_item_hgnn_weights, set when scoring with
        two_tower.new_item_exposure) or new_item_hgnn_weight."""
        weight = torch.full((len(v.ids),), self.new_item_hgnn_weight, device=v.ids.device)
        for code, solved in (self.new_item_hgnn_weights or {}).items():
            weight[v.codes["item_type"] == code] = solved
        new = (v.ids == 0).to(weight.dtype)
        return (1.0 + (weight - 1.0) * new).unsqueeze(-1)

    def _tower_items(self, v: ItemInputs) -> torch.Tensor:
        """(b, d) the item tower's unit output from the item's own inputs."""
        parts = [v.hgnn, _present(v.hgnn)] if self.use_hgnn else []
        parts += [v.text, self.item_categoricals(v.codes)]
        if self.id_dim:
            ids = self.ids(v.ids)  # (b, id_dim)
            if self.training and self.id_dropout > 0:
                keep = torch.rand(len(ids), 1, device=ids.device) >= self.id_dropout
                ids = ids * keep.to(ids.dtype)
            parts.append(ids)
        out = self.item_net(torch.cat(parts, dim=-1))
        if self.id_skip:
            out = out + self.item_id_skip(ids)
        return F.normalize(out, dim=-1)  # (b, d)

    @torch.no_grad()
    def set_new_item_reference(self, catalogue: ItemInputs, chunk: int = 8192) -> None:
        """Store the trained catalogue's text, types and tower outputs (as scored now) for the
        items released after training to borrow from (new_item_knn)."""
        if not self.new_item_knn:
            return
        training = self.training
        self.eval()
        self.reference_type.fill_(-1)
        for start in range(0, len(catalogue), chunk):
            v = catalogue.take(torch.arange(start, min(start + chunk, len(catalogue)),
                                            device=catalogue.ids.device))
            rows = v.ids
            self.reference_items[rows] = self._tower_items(v)
            self.reference_text[rows] = F.normalize(v.text, dim=-1)
            self.reference_type[rows] = v.codes["item_type"]
        self.reference_type[0] = -1  # the unknown id is nobody's neighbour
        self.train(training)

    def _type_centres(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per item-type code, over the trained items of the reference: the mean tower output
        (n_codes, d) and the items' mean distance from it (n_codes,)."""
        n_codes = int(self.reference_type.max().clamp(min=0)) + 1
        known = self.reference_type >= 0
        codes, vectors = self.reference_type[known], self.reference_items[known]
        count = torch.zeros(n_codes, device=vectors.device).index_add_(
            0, codes, torch.ones(len(codes), device=vectors.device)).clamp(min=1)
        centre = torch.zeros(n_codes, vectors.shape[1], device=vectors.device).index_add_(
            0, codes, vectors) / count[:, None]
        distance = (vectors - centre[codes]).norm(dim=-1)
        spread = torch.zeros(n_codes, device=vectors.device).index_add_(0, codes, distance)
        return centre, spread / count

    def _borrowed_for_new(self, z: torch.Tensor, v: ItemInputs, chunk: int = 2048,
                          ) -> torch.Tensor:
        """z with each row of an unknown id (0) replaced by the unit mean of the tower outputs
        of its new_item_knn trained items of the same type closest by text ("centred": the
        type's centre plus their mean offset from it, at the type's mean distance, see
        new_item_vector); kept where it has no text vector to look by, or its type no trained
        item."""
        new = torch.nonzero((v.ids == 0) & (v.text != 0).any(dim=-1)).squeeze(1)
        if len(new) == 0:
            return z
        z = z.clone()
        if self.new_item_vector == "centred":
            centre, spread = self._type_centres()
        text = F.normalize(v.text[new], dim=-1)
        types = v.codes["item_type"][new]
        for start in range(0, len(new), chunk):
            rows = slice(start, start + chunk)
            sims = text[rows] @ self.reference_text.T  # (c, n_ids + 1)
            same = types[rows, None] == self.reference_type[None, :]
            sims = sims.masked_fill(~same, float("-inf"))
            k = min(self.new_item_knn, sims.shape[1])
            top, index = sims.topk(k, dim=1)  # (c, k)
            valid = torch.isfinite(top)
            borrowed = (self.reference_items[index] * valid[..., None]).sum(1)  # (c, d)
            has = valid.any(1)
            if self.new_item_vector == "centred":
                t = types[rows].clamp(0, len(centre) - 1)  # a type no item trained: not has
                offset = borrowed - valid.sum(1, keepdim=True) * centre[t]  # (c, d)
                borrowed = centre[t] + F.normalize(offset, dim=-1) * spread[t][:, None]
            z[new[rows][has]] = F.normalize(borrowed[has], dim=-1)
        return z

    def _pooled_ids(self, history: IdLists, n: int) -> torch.Tensor:
        """(n, n_types + 1, id_dim): per type, then over all types, the recency-weighted mean
        of the history's id vectors (zeros where the list is empty)."""
        sums, weights = [], []
        device = self.ids.weight.device  # the lists are numpy: their tensors go where the model is
        for indptr, values in zip(history.indptr, history.values):
            offsets = torch.from_numpy(indptr).to(device)
            lengths = offsets[1:] - offsets[:-1]
            # output_size: known here, so CUDA need not wait for the lengths to size it
            position = (torch.arange(len(values), device=device)
                        - torch.repeat_interleave(offsets[:-1], lengths, output_size=len(values)))
            w = self.history_decay ** position.to(torch.float32)  # (n_values,)
            sums.append(F.embedding_bag(torch.from_numpy(values).to(device), self.ids.weight,
                                        offsets[:-1], mode="sum",
                                        per_sample_weights=w))  # (n, id_dim)
            weights.append(torch.zeros(n, device=device).index_add_(
                0, torch.repeat_interleave(torch.arange(n, device=device), lengths,
                                           output_size=len(values)), w))  # (n,)
        s = torch.stack(sums, dim=1)  # (n, n_types, id_dim)
        w = torch.stack(weights, dim=1)  # (n, n_types)
        by_type = s / w.clamp(min=1e-6).unsqueeze(-1)
        overall = s.sum(1) / w.sum(1, keepdim=True).clamp(min=1e-6)
        return torch.cat([by_type, overall.unsqueeze(1)], dim=1)

    def _user_input(self, u: UserInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(MLP input, (b, id_dim) pooled history ids over all types, or None)."""
        parts = ([u.avg_by_type.flatten(1), u.avg_all, _present(u.avg_all)] if self.use_hgnn
                 else [])
        parts.append(torch.log1p(u.n_by_type))
        pooled = None
        if self.id_dim:
            pooled = self._pooled_ids(u.history, len(u.n_by_type))
            parts.append(pooled.flatten(1))
            pooled = pooled[:, -1]
        parts.append(self.user_categoricals(u.codes))
        return torch.cat(parts, dim=-1), pooled

    def users(self, u: UserInputs) -> torch.Tensor:
        return self.users_with_prior(u)[0]

    def users_with_prior(self, u: UserInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """((b, out_dim) user vectors: the unit tower output (times s(user) with user_scale), then
        the hgnn_knn path's dims; (b,) weights on the popularity prior or None)."""
        x, pooled = self._user_input(u)
        out = self.user_net(x)
        if self.id_skip:
            out = out + self.user_id_skip(pooled)
        z = F.normalize(out, dim=-1)
        if self.unknown_user_prior_only:  # no taste vector: only the prior ranks them
            z = z * _known(u).unsqueeze(-1)
        if self.user_scale_net is not None:  # s(user) times the unit tower output
            z = F.softplus(self.user_scale_net(x)) * z
        if self.hgnn_skip:  # g(user) times the unit mean of the history's HGNN vectors
            g = F.softplus(self.hgnn_skip_net(x))  # (b, 1)
            z = torch.cat([z, g * F.normalize(u.avg_all, dim=-1)], dim=-1)
        weight = F.softplus(self.prior_net(x)).squeeze(-1) if self.prior_net is not None else None
        return z, weight

    # -- scoring: what evaluation ranks by and serving indexes -------------------------------

    def recent_popularity(self, popularity: torch.Tensor) -> torch.Tensor:
        """(...,) the "recent" prior's p(item) from (..., n_features) popularity inputs."""
        return self.popularity_net(popularity).squeeze(-1)

    def item_prior(self, v: ItemInputs) -> torch.Tensor:
        """(b,) p(item) of the popularity prior."""
        if self.popularity_prior == "recent":
            return self.recent_popularity(v.popularity)
        return self.log_q[v.ids]

    @property
    def has_prior(self) -> bool:
        return self.popularity_prior != "none"

    def item_vectors(self, v: ItemInputs) -> torch.Tensor:
        """Item-tower output, with the popularity prior as one more dimension when it is on:
        user_vector . item_vector = cosine [+ g(user) * hgnn cosine] + w(user) * temperature
        * p(item), the training logit times the temperature."""
        z = self.items(v)
        if not self.has_prior:
            return z
        return torch.cat([z, (self.temperature * self.item_prior(v)).unsqueeze(-1)], dim=-1)

    def user_vectors(self, u: UserInputs) -> torch.Tensor:
        z, weight = self.users_with_prior(u)
        if weight is None:
            return z
        return torch.cat([z, weight.unsqueeze(-1)], dim=-1)
