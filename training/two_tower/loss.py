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
