"""bench/two_tower_variants.py pooled: variants recorded in several workspaces (each its own
validation cutoff), their (user, type) units pooled, a user at two cutoffs two units."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import two_tower_variants  # noqa: E402

from evaluation.user_hits import save_user_hits  # noqa: E402


def _workspace(root: Path, cutoff: str, hits: dict[str, list[bool]]) -> Path:
    """A workspace's records: each name's hits on users u0, u1, ... (one type, 'film')."""
    reports = root / "reports"
    reports.mkdir(parents=True)
    with open(reports / two_tower_variants.RECORDS, "w") as f:
        for name, h in hits.items():
            f.write(json.dumps({"name": name, "kind": "peer", "settings": {},
                                "hr@10": {"film": float(np.mean(h))}, "validation_cutoff": cutoff,
                                "commit": "abc1234", "curve": []}) + "\n")
            users = np.arange(len(h))
            save_user_hits(reports / two_tower_variants.HITS_DIR / f"{name}.npz",
                           {name: {"film": (users, np.array(h))},
                            name + two_tower_variants.COLD: {"film": (users[:1], np.array(h[:1]))}},
                           np.array([f"u{i}" for i in range(len(h))], dtype=object))
    return root


def _row(text: str, name: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_pooled_counts_a_user_at_each_cutoff_as_its_own_unit(tmp_path):
    # the same user ids at both cutoffs: pooled by id they would collapse to 2 units
    a = _workspace(tmp_path / "a", "2007-10-19T00:00:00",
                   {"base": [True, False], "ease": [True, True], "popularity": [False, False]})
    b = _workspace(tmp_path / "b", "2006-10-19T00:00:00",
                   {"base": [False, False], "ease": [True, False], "popularity": [True, False]})
    out = tmp_path / "pooled.md"
    two_tower_variants.write_pooled_doc([a, b], "base", out)
    text = out.read_text()
    assert "2007-10-19, 2006-10-19" in text
    base, ease = _row(text, "base"), _row(text, "ease")
    assert base[2] == "4" and ease[2] == "4"  # units: 2 users x 2 cutoffs
    assert base[3] == "0.250" and ease[3] == "0.750"  # 1 of 4, 3 of 4
    assert ease[5].lstrip("*").startswith("+0.500")  # paired over the 4 units


def test_pooled_needs_the_baseline_in_every_workspace(tmp_path):
    a = _workspace(tmp_path / "a", "2007-10-19T00:00:00", {"base": [True], "ease": [True]})
    b = _workspace(tmp_path / "b", "2006-10-19T00:00:00", {"ease": [True]})
    with pytest.raises(SystemExit, match="'base' is not recorded in every workspace"):
        two_tower_variants.write_pooled_doc([a, b], "base", tmp_path / "pooled.md")
