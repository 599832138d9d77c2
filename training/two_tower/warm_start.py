"""Warm start: a new two-tower begins from the served model's weights (`gfm refresh`).

The towers' layers are copied as they are. The tables indexed by a vocabulary (learned item
ids, the categorical embeddings) are copied row by row for the values both models know:
items, countries, genres, ... that are new keep their fresh initialisation, and values the
served model knew but the new data lacks are dropped. A parameter whose shape changed (another
tower size, another text model) keeps its initialisation and is reported.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from training.two_tower.data import Vocabulary
from training.two_tower.model import TwoTowerModel
from training.two_tower.store import TwoTowerBundle

log = logging.getLogger(__name__)

# Buffers the trainer recomputes from the new data: never copied.
RECOMPUTED = frozenset({"log_q", "reference_text", "reference_type", "reference_items"})


def _row_pairs(new: dict[Any, int], old: dict[Any, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows in the new table, rows in the old table) of the keys both index; row 0 (the
    unknown value) maps to row 0."""
    shared = sorted(set(new) & set(old), key=new.__getitem__)
    new_rows = [0] + [new[k] for k in shared]
    old_rows = [0] + [old[k] for k in shared]
    return torch.tensor(new_rows), torch.tensor(old_rows)


def _vocabulary_tables(item_vocab: Vocabulary, user_vocab: Vocabulary,
                       id_index: dict[str, int], old: TwoTowerBundle,
                       ) -> dict[str, tuple[dict[Any, int], dict[Any, int]]]:
    """Parameter name -> (new key -> row, old key -> row) for every vocabulary-indexed table."""
    tables = {"ids.weight": (id_index, old.id_index)}
    for prefix, new_vocab, old_vocab in (("item_categoricals", item_vocab, old.item_vocab),
                                         ("user_categoricals", user_vocab, old.user_vocab)):
        for name, codes in new_vocab.codes.items():
            tables[f"{prefix}.embeddings.{name}.weight"] = (codes, old_vocab.codes.get(name, {}))
    return tables


@torch.no_grad()
def warm_start_weights(model: TwoTowerModel, item_vocab: Vocabulary, user_vocab: Vocabulary,
                       id_index: dict[str, int], old: TwoTowerBundle) -> dict[str, Any]:
    """Copy `old`'s weights into `model` (in place); returns what was copied and what not."""
    old_state = old.model.state_dict()
    tables = _vocabulary_tables(item_vocab, user_vocab, id_index, old)
    copied, kept, rows = 0, [], {}
    for name, target in model.state_dict().items():  # tensors that share the model's storage
        source = old_state.get(name)
        if name in RECOMPUTED:
            continue
        if source is None:
            kept.append(name)
        elif name in tables:
            if source.shape[1:] != target.shape[1:]:
                kept.append(name)
                continue
            new_rows, old_rows = _row_pairs(*tables[name])
            target[new_rows.to(target.device)] = source[old_rows].to(target.device)
            rows[name] = f"{len(new_rows)} of {len(target)}"
            copied += 1
        elif source.shape == target.shape:
            target.copy_(source)
            copied += 1
        else:
            kept.append(name)
    if kept:
        log.warning("warm start from %s: %d parameter(s) kept their initialisation (not in the "
                    "served model, or another shape): %s", old.version, len(kept),
                    ", ".join(kept[:8]))
    log.info("warm start from %s: %d parameter(s) copied; rows of the vocabulary tables: %s",
             old.version, copied, rows)
    return {"from": old.version, "copied": copied, "kept": kept, "rows": rows}
