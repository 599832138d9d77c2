"""In-batch softmax with the log-Q sampling-bias correction (Yi et al., RecSys 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def in_batch_softmax_loss(
    user: torch.Tensor,  # (b, d) L2-normalised
    item: torch.Tensor,  # (b, d) L2-normalised; row i is user i's positive
    item_ids: torch.Tensor,  # (b,) integer ids of the positives
    log_q: torch.Tensor | None,  # (b,) log sampling probability of each positive
    temperature: float,
    remove_accidental_hits: bool = True,
    prior: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """`prior` (w, p): user i's logit for item j gains w[i] * p[j] (the model's popularity
    prior: a learned per-user weight times the item's log popularity)."""
    logits = user @ item.T / temperature  # (b, b)
    if prior is not None:
        weight, popularity = prior  # (b,), (b,)
        logits = logits + weight[:, None] * popularity[None, :]
    if log_q is not None:
        logits = logits - log_q[None, :]
    if remove_accidental_hits:
        same = item_ids[None, :] == item_ids[:, None]  # (b, b)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(len(user), device=user.device)
    return F.cross_entropy(logits, labels)


def full_softmax_loss(
    scores: torch.Tensor,  # (b, n) cosine of each row's user with every trained item
    positive: torch.Tensor,  # (b,) index of each row's positive among the n items
    temperature: float,
    masked: torch.Tensor | None = None,  # (b, n) bool: items that are not negatives
    prior: tuple[torch.Tensor, torch.Tensor] | None = None,  # (b,), (n,) or (b, n)
) -> torch.Tensor:
    """Softmax over the whole trained catalogue: no sampling, so no log-Q correction.
    `masked` items (the user's history: never served, so never pushed down) are left out of
    the denominator; a row's own positive is always kept. `prior` (w, p): row i's logit for
    item j gains w[i] * p[j], or w[i] * p[i, j] when the items' popularity is per row (the
    example's day)."""
    logits = scores / temperature
    if prior is not None:
        weight, popularity = prior
        logits = logits + weight[:, None] * (popularity if popularity.dim() == 2
                                             else popularity[None, :])
    if masked is not None:
        rows = torch.arange(len(positive), device=scores.device)
        masked = masked.clone()
        masked[rows, positive] = False
        logits = logits.masked_fill(masked, float("-inf"))
    return F.cross_entropy(logits, positive)


def catalog_softmax_loss(
    user: torch.Tensor,  # (b, d) user vectors
    catalogue: list[tuple[torch.Tensor, torch.Tensor]],  # [((b,) bool rows, (n, d) items)]
    positive: torch.Tensor,  # (b,) index of each row's positive among the n items
    temperature: float,
    groups: torch.Tensor | None = None,  # (n,) int group (item type) of each item
    masked: torch.Tensor | None = None,  # (b, n) bool: items that are not negatives
    prior: tuple[torch.Tensor, torch.Tensor] | None = None,  # (b,), (n,) or (b, n)
) -> torch.Tensor:
    """`full_softmax_loss` of the rows' scores against the catalogue, computed block by block.
    `catalogue`: which rows score against which version of the item vectors (an example
    before graph_as_of sees items without HGNN vectors). `groups`: a row's negatives are the
    items of its positive's group only. Every column outside the group would be masked, so
    leaving it out of the block gives the same loss, and each block costs its rows x its
    group's items instead of every row x every item."""
    n = catalogue[0][1].shape[0]
    device = user.device
    row_group = groups[positive] if groups is not None else None
    total = user.new_zeros(())
    for rows, items in catalogue:
        for group in (torch.unique(row_group[rows]) if row_group is not None else [None]):
            selected = rows if group is None else rows & (row_group == group)
            r = selected.nonzero().squeeze(1)
            if len(r) == 0:
                continue
            cols = (torch.arange(n, device=device) if group is None
                    else (groups == group).nonzero().squeeze(1))
            position = torch.full((n,), -1, dtype=torch.long, device=device)
            position[cols] = torch.arange(len(cols), device=device)
            block_prior = None
            if prior is not None:
                weight, popularity = prior
                block_prior = (weight[r], popularity[r][:, cols] if popularity.dim() == 2
                               else popularity[cols])
            loss = full_softmax_loss(user[r] @ items[cols].T, position[positive[r]], temperature,
                                     masked[r][:, cols] if masked is not None else None,
                                     block_prior)
            total = total + loss * len(r)
    return total / len(positive)
