"""embed.device, hgnn.device, two_tower.device: auto | cpu | cuda (CPU-only checks)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gfm.config import load_config, parse_overrides
from gfm.device import resolve_device
from gfm.errors import ConfigError, GfmError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_defaults_are_auto():
    config = load_config()
    assert (config.embed.device, config.hgnn.device, config.two_tower.device) == ("auto",) * 3


@pytest.mark.parametrize("section", ["embed", "hgnn", "two_tower"])
def test_each_setting_takes_auto_cpu_cuda_and_nothing_else(section):
    for value in ("auto", "cpu", "cuda"):
        config = load_config(overrides=parse_overrides([f"{section}.device={value}"]))
        assert getattr(config, section).device == value  # cuda is checked when it is used
    with pytest.raises(ConfigError, match=rf"{section}\.device must be auto, cpu or cuda, got 'gpu'"):
        load_config(overrides=parse_overrides([f"{section}.device=gpu"]))


def test_yaml_setting_is_validated_too(tmp_path):
    (tmp_path / "gfm.yaml").write_text("hgnn:\n  device: cuda:0\n")
    with pytest.raises(ConfigError, match="hgnn.device must be auto, cpu or cuda"):
        load_config(tmp_path)


def test_auto_is_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_auto_is_cpu_on_this_machine():
    assert resolve_device("auto") == "cpu"


def test_auto_is_cuda_when_torch_sees_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"


def test_cuda_without_cuda_says_to_use_auto_or_cpu(no_cuda):
    with pytest.raises(ConfigError) as caught:
        resolve_device("cuda", "two_tower.device")
    message = str(caught.value)
    assert "two_tower.device is cuda" in message
    assert "auto" in message and "cpu" in message and "--set two_tower.device=auto" in message
    assert isinstance(caught.value, GfmError)  # the CLI prints it and exits non-zero


def test_bad_value_is_refused_when_resolved():
    with pytest.raises(ConfigError, match="must be auto, cpu or cuda"):
        resolve_device("tpu", "embed.device")


def test_config_reads_without_importing_torch():
    code = ("import sys; from gfm.config import load_config; load_config(); "
            "assert 'torch' not in sys.modules, 'gfm.config imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


# -- the stages refuse cuda on a machine without it, before any work -------------------------


def test_hgnn_trainer_refuses_cuda_without_it(no_cuda):
    from tests.unit.test_hgnn import _config, _graph
    from training.hgnn.graph import split_edges
    from training.hgnn.train import LinkPredictionTrainer

    graph = _graph()
    with pytest.raises(ConfigError, match="hgnn.device is cuda"):
        LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config(device="cuda"))


def test_hgnn_trainer_on_cpu_by_default_and_records_it():
    from tests.unit.test_hgnn import _config, _graph
    from training.hgnn.graph import split_edges
    from training.hgnn.train import LinkPredictionTrainer

    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config())
    assert trainer.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_two_tower_refuses_cuda_without_it(no_cuda):
    from training.two_tower.config import TwoTowerConfig
    from training.two_tower.train import fit_two_tower

    with pytest.raises(ConfigError, match="two_tower.device is cuda"):
        fit_two_tower(pd.DataFrame({"user_id": ["u1"]}), TwoTowerConfig(device="cuda"),
                      ["podcast"])


def test_text_model_refuses_cuda_without_it(no_cuda):
    from transforms.text_embedding import load_text_model

    with pytest.raises(ConfigError, match="embed.device is cuda"):
        load_text_model(None, "cuda")


def test_hgnn_version_does_not_depend_on_the_device():
    import datetime as dt

    from training.hgnn.config import HGNNConfig
    from training.hgnn.train import hgnn_version

    as_of = dt.datetime(2025, 1, 1)
    assert (hgnn_version(HGNNConfig(device="cpu"), as_of, "t", "e")
            == hgnn_version(HGNNConfig(device="cuda"), as_of, "t", "e"))


# -- what CUDA runs, checked on the CPU --------------------------------------------------------


def test_edge_index_messages_equal_the_csr_adjacency():
    """On CUDA the HGNN aggregates over edge indices (PyG has no sparse max there); on the CPU
    over a CSR adjacency. Both on the CPU here: the same vectors and gradients."""
    from tests.unit.test_hgnn import _config, _graph
    from training.hgnn.model import HeteroGraphSAGE
    from training.hgnn.train import message_index, to_adjacency

    graph = _graph()
    torch.manual_seed(0)
    model = HeteroGraphSAGE(graph.node_types, graph.relations, 16, _config(dropout=0.0))
    model.eval()
    x = {t: torch.from_numpy(v) for t, v in graph.x.items()}
    n = {t: graph.num_nodes(t) for t in graph.node_types}
    csr = {r: to_adjacency(e, n[r[0]], n[r[2]]) for r, e in graph.edges.items()}
    # A duplicate edge: the max does not change (the CSR path removes duplicates).
    dup = {r: np.concatenate([e, e[:, :1]], axis=1) for r, e in graph.edges.items()}
    index = {r: torch.from_numpy(np.ascontiguousarray(e)) for r, e in dup.items()}
    assert message_index(graph.edges[graph.relations[0]], 4, 4, "cpu").layout == torch.sparse_csr
    a, b = model(x, csr), model(x, index)
    for t in a:
        assert torch.allclose(a[t], b[t], atol=1e-6)
    sum(v.sum() for v in a.values()).backward()
    grads_csr = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    sum(v.sum() for v in model(x, index).values()).backward()
    grads_index = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.allclose(g, h, atol=1e-5) for g, h in zip(grads_csr, grads_index))


def test_pooled_ids_follow_the_model_device():
    """The history id lists are numpy: _pooled_ids builds their tensors where the weights are
    (here the CPU; 'meta' stands in for another device without running anything)."""
    from training.two_tower.config import TwoTowerConfig
    from training.two_tower.data import IdLists
    from training.two_tower.model import TwoTowerModel

    model = TwoTowerModel(TwoTowerConfig(item_id_dim=4), 8, 8, ["a", "b"], {"x": 2}, {"y": 2},
                          n_item_ids=5)
    history = IdLists([np.array([0, 2, 3]), np.array([0, 0, 1])],
                      [np.array([1, 2, 3]), np.array([4])])
    pooled = model._pooled_ids(history, 2)
    assert pooled.shape == (2, 3, 4) and pooled.device.type == "cpu"
    assert model.device.type == "cpu"
    meta = model.to("meta")
    assert meta._pooled_ids(history, 2).device.type == "meta"


def test_training_runs_with_deterministic_kernels_and_restores_the_setting():
    """train_hgnn and fit_two_tower run under deterministic_torch (the HGNN's CPU training
    otherwise differs from run to run); the caller's setting is back afterwards, also after an
    error."""
    import pytest
    import torch

    from gfm.device import deterministic_torch
    from training.hgnn.train import train_hgnn
    from training.two_tower.train import fit_two_tower

    seen = []

    @deterministic_torch()
    def probe():
        seen.append((torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled()))
        raise RuntimeError("stop")

    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError):
        probe()
    assert seen == [(True, True)] and not torch.are_deterministic_algorithms_enabled()
    for trainer in (train_hgnn, fit_two_tower):  # wrapped by the decorator
        assert getattr(trainer, "__wrapped__", None) is not None, trainer
