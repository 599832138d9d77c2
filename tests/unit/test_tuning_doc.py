"""docs/tuning.md's table of searched settings is what evaluation/tune.py searches."""

from __future__ import annotations

from pathlib import Path

from evaluation.tune import SPACES, Param

KINDS = {"log": "log-uniform", "float": "uniform", "int": "integer", "choice": "choice"}


def _row(model: str, p: Param) -> str:
    if p.kind == "choice":
        values = ", ".join(str(c) for c in p.choices)
    elif p.kind == "int":
        values = f"{int(p.low)} to {int(p.high)}"
    else:
        values = f"{p.low} to {p.high}"
    return f"| {model} | `{p.key}` | {KINDS[p.kind]} | {values} |"


def test_the_documented_search_space_is_the_one_searched():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "tuning.md").read_text()
    documented = [line for line in doc.splitlines()
                  if line.startswith("| ") and "`" in line.split("|")[2]]
    expected = [_row(model, p) for model, space in SPACES.items() for p in space]
    assert documented == expected
