"""How much of the top-10 a release gets: the hgnn_knn path's weight on items the model never
trained on, solved per item type for a target exposure (two_tower.new_item_exposure); and the
same for a retriever's scores, as an offset on new items (evaluation.hgnn_knn_new_item_exposure).

A fixed weight (two_tower.new_item_hgnn_weight) did not carry over between trainings: on
medium the same 1.3 gave new items 4% of the top-10 slots on the validation split's model and
24% on the hold-out's (docs/architecture.md). So the weight is solved for each model instead:
per item type, the smallest at which new items take `exposure` x their share of the type's
catalogue of the top-10 slots of a fixed sample of users with history (over the whole
catalogue of the type: the solve needs no history lists). It reads no interaction after the
cutoff (the users' vectors as of it, the items' static features), so it is solved wherever the
catalogue is scored, `gfm evaluate` and `gfm index` alike, from the same users and items.
"""

from __future__ import annotations

import numpy as np

SLOTS = 10  # the top k the exposure counts: HR@10's
SAMPLE_USERS = 2000  # users with history the exposure is measured on
MAX_WEIGHT = 4.0  # the weight never goes above it, whatever the target
MAX_OFFSET = 1.0  # nor an offset (a cosine's range is 2: 1 puts a new item far up)
BISECTION_STEPS = 30


def exposure_sample(user_ids: list[str], n: int = SAMPLE_USERS) -> list[str]:
    """A fixed, seeded sample of `user_ids` (sorted): the users the exposure is measured on."""
    users = sorted(user_ids)
    if len(users) <= n:
        return users
    return sorted(np.random.default_rng(0).choice(np.asarray(users, dtype=object), size=n,
                                                  replace=False).tolist())


def slot_share(warm: np.ndarray, new: np.ndarray, k: int = SLOTS) -> float:
    """Share of the top-k slots over `warm` (n_users, n_warm) and `new` (n_users, n_new)
    scores that go to new items."""
    k = min(k, warm.shape[1] + new.shape[1])
    merged = np.concatenate([warm, new], axis=1)
    threshold = -np.partition(-merged, k - 1, axis=1)[:, k - 1:k]  # (n_users, 1) the kth best
    return float((new >= threshold).sum() / (len(new) * k))


def solve_weights(user_vectors: np.ndarray, at_one: np.ndarray, at_two: np.ndarray,
                  is_new: np.ndarray, types: np.ndarray, exposure: float,
                  k: int = SLOTS) -> dict[int, dict[str, float]]:
    """Per item type code: the new items' hgnn_knn-path weight, with the share it gives.

    user_vectors (n_users, d); at_one / at_two (n_items, d): the item vectors with the weight
    at 1 and at 2 (the score is linear in it, so a weight w scores at_one + (w - 1)(at_two -
    at_one)); is_new (n_items,) bool: items without a learned id; types (n_items,) type codes.
    The target share is exposure x the type's new-item share of its catalogue; the weight stays
    1 where that share is reached already (it only ever lifts new items), MAX_WEIGHT where it
    cannot be."""
    base, slope = user_vectors @ at_one.T, user_vectors @ (at_two - at_one).T
    return {code: {"weight": 1.0 + lift, **rest} for code, (lift, rest) in _solve_lifts(
        base, slope, is_new, types, exposure, MAX_WEIGHT - 1.0, k).items()}


def solve_offsets(scores: np.ndarray, is_new: np.ndarray, types: np.ndarray, exposure: float,
                  k: int = SLOTS) -> dict[int, dict[str, float]]:
    """Per item type code: the score added to the new items of `scores` (n_users, n_items) so
    that they take exposure x their share of the type's catalogue of the top-k slots (a
    retriever's scores, e.g. hgnn_knn's cosines), with the share it gives. As solve_weights: 0
    where that share is reached already, MAX_OFFSET where it cannot be."""
    lifts = _solve_lifts(scores, None, is_new, types, exposure, MAX_OFFSET, k)
    return {code: {"offset": lift, **rest} for code, (lift, rest) in lifts.items()}


def _solve_lifts(base: np.ndarray, slope: np.ndarray | None, is_new: np.ndarray, types: np.ndarray,
                 exposure: float, max_lift: float, k: int) -> dict[int, tuple[float, dict]]:
    """Per item type code with new and warm items: (the smallest lift x in [0, max_lift] at
    which its new items, scored base + x slope ((n_users, n_items) each; slope None: 1), take
    exposure x their catalogue share of the top-k slots, {target_share, share, new_items})."""
    out: dict[int, tuple[float, dict]] = {}
    for code in np.unique(types):
        of_type = types == code
        new = of_type & is_new
        n_new, n_type = int(new.sum()), int(of_type.sum())
        if n_new == 0 or n_new == n_type or len(base) == 0:
            continue
        warm_scores = base[:, of_type & ~is_new]
        kk = min(k, warm_scores.shape[1])
        warm_top = -np.partition(-warm_scores, kk - 1, axis=1)[:, :kk]  # what new items displace
        target = min(1.0, exposure * n_new / n_type)
        lift, share = _bisect(warm_top, base[:, new], None if slope is None else slope[:, new],
                              target, max_lift, k)
        out[int(code)] = (lift, {"target_share": target, "share": share, "new_items": n_new})
    return out


def _bisect(warm_top: np.ndarray, base: np.ndarray, slope: np.ndarray | None, target: float,
            max_lift: float, k: int) -> tuple[float, float]:
    """(the smallest lift in [0, max_lift] whose new-item scores base + lift x slope take
    `target` of the top-k slots, its share); 0 or max_lift at the bounds."""
    def share(lift: float) -> float:
        return slot_share(warm_top, base + (lift if slope is None else lift * slope), k)

    lo, hi = 0.0, max_lift
    if share(lo) >= target:
        return lo, share(lo)
    if share(hi) < target:
        return hi, share(hi)
    for _ in range(BISECTION_STEPS):  # share(lo) < target <= share(hi)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < target else (lo, mid)
    return hi, share(hi)
