"""Rolling cutoffs: which cutoffs, which stages a workspace copy runs, and pooling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from evaluation.rolling import _pool, rolling_cutoffs
from gfm.stages import pipeline_stages, stages_for


def test_cutoffs_step_back_from_the_configured_one():
    cutoffs = rolling_cutoffs(dt.datetime(2025, 7, 4), 3, 14)
    assert cutoffs == [dt.datetime(2025, 7, 4), dt.datetime(2025, 6, 20), dt.datetime(2025, 6, 6)]


@pytest.mark.parametrize("models, stages", [
    (["popularity", "als"], ["transform"]),
    (["text_knn"], ["transform", "embed"]),
    (["hgnn_knn"], ["transform", "embed", "train hgnn"]),
    (["popularity", "unified_2t"],
     ["transform", "embed", "train hgnn", "features apply", "train two-tower"]),
])
def test_a_copy_runs_only_the_stages_its_models_need(models, stages):
    assert [" ".join(s) for s in stages_for(models)] == stages


def test_one_stage_list_for_the_pipeline_and_the_copies():
    assert [" ".join(s) for s in pipeline_stages()] == [
        "transform", "embed", "train hgnn", "features apply", "features materialize",
        "train two-tower", "evaluate", "index"]
    # The paper's day copies: the two-tower's stages but embed (their text vectors are copied).
    assert [" ".join(s) for s in stages_for(["unified_2t"], without=["embed"])] == [
        "transform", "train hgnn", "features apply", "train two-tower"]


def test_pooling_sums_hits_and_units_over_cutoffs():
    # cutoff 0: users a, b, c; cutoff 1: users b, d (b counted twice: one cluster).
    units = [
        {"user_ids": np.array(["a", "b", "c"], dtype=object),
         "hits": {"m": {"t": (np.array([0, 1, 2]), np.array([True, False, True]))}}},
        {"user_ids": np.array(["b", "d"], dtype=object),
         "hits": {"m": {"t": (np.array([0, 1]), np.array([True, False]))}}},
    ]
    pooled = _pool(units, k=10)["m"]
    assert pooled["units"] == {"t": 5} and pooled["hits"] == {"t": 3}
    assert pooled["hr@10"]["t"] == pytest.approx(0.6)
    lo, hi = pooled["hr@10_ci"]["t"]
    assert 0.0 <= lo <= 0.6 <= hi <= 1.0
