import numpy as np
import torch

from training.two_tower.data import IdLists, UserInputs


def test_without_history_makes_exactly_the_chosen_users_cold():
    history = IdLists([np.array([0, 2, 2, 5]), np.array([0, 1, 3, 3])],
                      [np.array([1, 2, 3, 4, 5]), np.array([7, 8, 9])])
    users = UserInputs(torch.ones(3, 2, 4), torch.tensor([[2.0, 1.0], [0.0, 2.0], [3.0, 0.0]]),
                       torch.ones(3, 4), {"country": torch.tensor([1, 2, 3])}, history)
    cold = users.without_history(np.array([False, True, False]))
    assert cold.avg_all[1].abs().sum() == 0 and cold.avg_by_type[1].abs().sum() == 0
    assert cold.n_by_type[1].tolist() == [0.0, 0.0]
    assert torch.equal(cold.avg_all[[0, 2]], users.avg_all[[0, 2]])
    assert cold.codes["country"].tolist() == [1, 2, 3]  # demographics stay
    assert [p.tolist() for p in cold.history.indptr] == [[0, 2, 2, 5], [0, 1, 1, 1]]
    assert [v.tolist() for v in cold.history.values] == [[1, 2, 3, 4, 5], [7]]
    # emptying every row leaves no ids; emptying none changes nothing
    assert all(len(v) == 0 for v in history.emptied(np.ones(3, bool)).values)
    same = history.emptied(np.zeros(3, bool))
    assert all(np.array_equal(a, b) for a, b in zip(same.values, history.values))
    unknown = cold.without_demographics(np.array([True, False, False]))
    assert unknown.codes["country"].tolist() == [0, 2, 3]
    assert torch.equal(unknown.avg_all, cold.avg_all)
