"""Rolling cutoffs: which cutoffs, which stages a workspace copy runs, and pooling."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from evaluation.rolling import (
    _pool,
    _versus_reference,
    format_versus_markdown,
    rolling_cutoffs,
)
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


def _two_cutoffs(hits_m: list[list[bool]], hits_r: list[list[bool]]):
    """Cutoff 0 counts users a, b, c; cutoff 1 users b, d (b twice: one cluster). The
    reference, unified_2t, did not count user c at cutoff 0."""
    users = [np.array(["a", "b", "c"], dtype=object), np.array(["b", "d"], dtype=object)]
    counted_r = [np.array([0, 1]), np.array([0, 1])]
    return [{"user_ids": users[j],
             "hits": {"unified_2t": {"t": (counted_r[j], np.array(hits_r[j]))},
                      "m": {"t": (np.arange(len(users[j])), np.array(hits_m[j]))}}}
            for j in range(2)]


def test_the_reference_is_paired_with_each_model_on_the_units_both_count():
    units = _two_cutoffs(hits_m=[[False, False, True], [True, False]],
                         hits_r=[[True, False], [True, True]])
    versus = _versus_reference(units)
    assert versus["reference"] == "unified_2t" and list(versus["comparisons"]) == ["m"]
    c = versus["comparisons"]["m"]["t"]
    # Units a@0, b@0, b@1, d@1 (c@0 is the model's alone): the reference hits a@0, b@1, d@1,
    # the model b@1; so only the reference hits a@0 and d@1, only the model none.
    assert (c["n_users"], c["n_clusters"]) == (4, 3)
    assert (c["only_a"], c["only_b"], c["both"], c["neither"]) == (2, 0, 1, 1)
    assert c["hr_a"] == pytest.approx(0.75) and c["hr_b"] == pytest.approx(0.25)
    assert c["diff"] == pytest.approx(0.5)
    lo, hi = c["diff_ci"]
    assert lo <= 0.5 <= hi
    assert "all types" not in versus["comparisons"]["m"]  # one type: nothing to pool
    lines = format_versus_markdown({"versus": versus})
    assert any(line.startswith("| m | t | 4 | 3 | 0.750 | 0.250 |") for line in lines)


def test_no_comparison_without_the_reference():
    units = [{"user_ids": np.array(["a"], dtype=object),
              "hits": {"m": {"t": (np.array([0]), np.array([True]))}}}]
    assert _versus_reference(units) == {}
    assert format_versus_markdown({"versus": {}}) == []


def test_units_stay_apart_whatever_the_user_ids_hold_and_a_type_may_be_missing():
    # Ids with the key's separator in them; a second type only at cutoff 1, for one user who
    # is in both types there (one cluster over all types).
    def unit(ids, per_type):
        return {"user_ids": np.array(ids, dtype=object),
                "hits": {m: {t: (np.array(ix), np.array(h[m])) for t, (ix, h) in per_type.items()}
                         for m in ("unified_2t", "m")}}

    units = [unit(["1|x", "1"], {"t": ([0, 1], {"unified_2t": [True, False],
                                                  "m": [False, False]})}),
             unit(["x", "1|x"], {"t": ([0, 1], {"unified_2t": [True, True], "m": [True, False]}),
                                 "u": ([1], {"unified_2t": [True], "m": [False]})})]
    comparisons = _versus_reference(units)["comparisons"]["m"]
    t, u, pooled = comparisons["t"], comparisons["u"], comparisons["all types"]
    assert (t["n_users"], t["n_clusters"], t["only_a"], t["both"]) == (4, 3, 2, 1)
    assert (u["n_users"], u["n_clusters"], u["only_a"]) == (1, 1, 1)
    assert (pooled["n_users"], pooled["n_clusters"], pooled["only_a"]) == (5, 3, 3)
