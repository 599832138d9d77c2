import math

import torch
import torch.nn.functional as F

from training.two_tower.loss import (
    catalog_softmax_loss,
    full_softmax_loss,
    in_batch_softmax_loss,
)


def _direct(user, item, ids, log_q, t, remove_hits):
    """Loss computed one example at a time, straight from the definition."""
    total = 0.0
    for i in range(len(user)):
        logits = []
        for j in range(len(item)):
            if remove_hits and j != i and ids[j] == ids[i]:
                continue
            s = float(user[i] @ item[j]) / t
            if log_q is not None:
                s -= float(log_q[j])
            logits.append((j, s))
        top = max(s for _, s in logits)
        log_z = top + math.log(sum(math.exp(s - top) for _, s in logits))
        own = next(s for j, s in logits if j == i)
        total += log_z - own
    return total / len(user)


def test_log_q_loss_matches_direct_computation():
    torch.manual_seed(0)
    user = F.normalize(torch.randn(6, 4), dim=-1)
    item = F.normalize(torch.randn(6, 4), dim=-1)
    ids = torch.tensor([3, 1, 3, 2, 5, 1])  # items 3 and 1 appear twice: accidental hits
    log_q = torch.log(torch.tensor([0.3, 0.2, 0.3, 0.1, 0.05, 0.2]))
    for q in (None, log_q):
        for remove in (True, False):
            got = in_batch_softmax_loss(user, item, ids, q, 0.1, remove)
            assert abs(float(got) - _direct(user, item, ids, q, 0.1, remove)) < 1e-4


def test_log_q_correction_lowers_the_weight_of_frequent_negatives():
    # Equal scores everywhere; item 1 is sampled 50x more often than item 0. Without the
    # correction both examples lose log(2); with it, the example whose negative is the
    # frequent item loses less, and the one whose negative is the rare item loses more.
    user = F.normalize(torch.ones(2, 2), dim=-1)
    item = user.clone()
    ids = torch.tensor([0, 1])
    log_q = torch.log(torch.tensor([0.01, 0.5]))
    plain = float(in_batch_softmax_loss(user, item, ids, None, 1.0))
    assert abs(plain - math.log(2)) < 1e-6
    first = float(in_batch_softmax_loss(user[:1].repeat(2, 1), item, ids, log_q, 1.0))
    expected_first = 0.5 * (math.log(1 + 0.01 / 0.5) + math.log(1 + 0.5 / 0.01))
    assert abs(first - expected_first) < 1e-5


def test_popularity_prior_adds_user_weight_times_item_popularity():
    torch.manual_seed(1)
    user = F.normalize(torch.randn(5, 4), dim=-1)
    item = F.normalize(torch.randn(5, 4), dim=-1)
    ids = torch.arange(5)
    weight = torch.tensor([0.0, 0.5, 1.0, 2.0, 0.1])
    popularity = torch.log(torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05]))
    got = in_batch_softmax_loss(user, item, ids, None, 0.1, True, (weight, popularity))
    logits = user @ item.T / 0.1 + weight[:, None] * popularity[None, :]
    assert abs(float(got) - float(F.cross_entropy(logits, ids))) < 1e-5
    # With every weight at zero the prior changes nothing.
    zero = in_batch_softmax_loss(user, item, ids, None, 0.1, True, (weight * 0, popularity))
    assert abs(float(zero) - float(in_batch_softmax_loss(user, item, ids, None, 0.1))) < 1e-6


def test_catalog_softmax_matches_the_definition_and_masks_history_but_not_the_positive():
    torch.manual_seed(2)
    scores = torch.randn(3, 5)  # 3 users x 5 catalogue items (cosines)
    positive = torch.tensor([1, 4, 0])
    masked = torch.zeros(3, 5, dtype=torch.bool)
    masked[0, [1, 2]] = True  # row 0: its positive is in its history: still counted
    masked[1, 3] = True
    t = 0.5
    got = float(full_softmax_loss(scores, positive, t, masked))
    total = 0.0
    for i in range(3):
        kept = [j for j in range(5) if not masked[i, j] or j == positive[i]]
        logits = torch.stack([scores[i, j] / t for j in kept])
        total += float(torch.logsumexp(logits, 0) - scores[i, positive[i]] / t)
    assert abs(got - total / 3) < 1e-5
    # Masking can only lower the loss (fewer terms in the denominator), and does here.
    assert got < float(full_softmax_loss(scores, positive, t))


def test_blockwise_catalog_softmax_equals_the_masked_full_one_with_its_gradients():
    """Per catalogue version and item type, the blocks give the loss (and gradients) of one
    softmax over every item with other types' items masked."""
    torch.manual_seed(3)
    b, n, d = 12, 9, 4
    user = torch.randn(b, d, requires_grad=True)
    served, bare = torch.randn(n, d, requires_grad=True), torch.randn(n, d, requires_grad=True)
    late = torch.rand(b) < 0.5
    groups = torch.tensor([0, 1, 0, 0, 1, 2, 1, 0, 2])
    positive = torch.randint(0, n, (b,))
    history = torch.rand(b, n) < 0.2
    weight, popularity = torch.rand(b), torch.randn(b, n)

    def grads(loss):
        return [g.clone() for g in torch.autograd.grad(loss, (user, served, bare))]

    got = catalog_softmax_loss(user, [(late, served), (~late, bare)], positive, 0.3, groups,
                               history, (weight, popularity))
    scores = torch.where(late[:, None], user @ served.T, user @ bare.T)
    other_type = groups[None, :] != groups[positive][:, None]
    want = full_softmax_loss(scores, positive, 0.3, history | other_type, (weight, popularity))
    assert abs(float(got) - float(want)) < 1e-5
    for a, c in zip(grads(got), grads(want)):
        assert torch.allclose(a, c, atol=1e-5)
    # Without groups every item competes: the plain masked softmax.
    everyone = catalog_softmax_loss(user, [(late, served), (~late, bare)], positive, 0.3,
                                    masked=history)
    assert abs(float(everyone) - float(full_softmax_loss(scores, positive, 0.3, history))) < 1e-5
