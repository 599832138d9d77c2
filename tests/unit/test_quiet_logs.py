"""Logs say what a person needs: Feast's registry-refresh INFO line and torch's sparse warnings
stay out of gfm's output."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from gfm.cli.main import main


def test_feast_registry_refresh_line_is_quiet_unless_verbose(tmp_path, caplog, capsys):
    from feast.infra.registry import caching_registry, registry

    assert main(["config", "--workdir", str(tmp_path)]) == 0
    with caplog.at_level(logging.INFO):
        registry.logger.info("Registry cache expired, so refreshing")
        caching_registry.logger.info("Registry cache expired(ttl: 60 seconds), so refreshing")
        registry.logger.warning("a registry warning still shows")
        assert "Registry cache expired" not in caplog.text
        assert "a registry warning still shows" in caplog.text

        assert main(["-v", "config", "--workdir", str(tmp_path)]) == 0
        caplog.clear()
        registry.logger.info("Registry cache expired, so refreshing")
        assert "Registry cache expired" in caplog.text
    assert main(["config", "--workdir", str(tmp_path)]) == 0  # quiet again for later tests
    capsys.readouterr()


def test_hgnn_adjacency_warns_nothing_and_drops_duplicate_edges():
    from training.hgnn.train import to_adjacency

    edges = np.array([[0, 1, 1, 2], [1, 0, 0, 0]])  # src row, dst row; 1->0 twice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjacency = to_adjacency(edges, 3, 2)
    assert adjacency.layout == torch.sparse_csr
    assert adjacency.to_dense().tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
