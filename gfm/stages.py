"""The pipeline's stages, in order: the one list that `gfm pipeline`, the rolling cutoffs' and the
paper experiments' workspace copies run from.

A stage is a `gfm` subcommand (its argv). `needed_by` names the evaluated models whose inputs the
stage builds: a workspace copy that evaluates some models runs only the stages they need. The
last stages (materialize, evaluate, index) build what is served and reported, which no copy needs.
`gfm refresh` runs the stages of the served chain but the evaluation (a refreshed cutoff has no
hold-out yet), with the static layer extended to new items rather than retrained unless due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

TEXT_MODELS = frozenset({"text_knn", "hgnn_knn", "unified_2t"})
HGNN_MODELS = frozenset({"hgnn_knn", "unified_2t"})
TWO_TOWER_MODELS = frozenset({"unified_2t"})


@dataclass(frozen=True)
class Stage:
    argv: tuple[str, ...]
    needed_by: frozenset[str] | None  # None: every model; empty: no model (served or reported)

    def needed_for(self, models: Iterable[str]) -> bool:
        return self.needed_by is None or bool(self.needed_by & set(models))


STAGES: tuple[Stage, ...] = (
    Stage(("transform",), None),
    Stage(("embed",), TEXT_MODELS),
    Stage(("train", "hgnn"), HGNN_MODELS),
    Stage(("features", "apply"), TWO_TOWER_MODELS),
    Stage(("features", "materialize"), frozenset()),
    Stage(("train", "two-tower"), TWO_TOWER_MODELS),
    Stage(("evaluate",), frozenset()),
    Stage(("index",), frozenset()),
)


def pipeline_stages() -> list[list[str]]:
    """Every stage, in order (`gfm pipeline`, after `generate` when raw/ is empty)."""
    return [list(stage.argv) for stage in STAGES]


def stages_for(models: Iterable[str], without: Iterable[str] = ()) -> list[list[str]]:
    """The stages a workspace copy needs before these models can be built, in pipeline order;
    `without`: stages (as "train hgnn") whose output the copy already holds."""
    models, skip = set(models), set(without)
    return [list(stage.argv) for stage in STAGES
            if stage.needed_for(models) and " ".join(stage.argv) not in skip]


def refresh_stages(static: bool) -> list[list[str]]:
    """What `gfm refresh` runs, in pipeline order: every stage but the evaluation. The static
    layer (the HGNN) is retrained only when `static`; otherwise its vectors are extended to the
    items released since it ran (`train hgnn --new-items`), and the two-tower is warm-started
    from the served one (not after a retrained HGNN: its vectors are another space)."""
    plan = [list(stage.argv) for stage in STAGES if stage.argv != ("evaluate",)]
    if static:
        return plan
    return [argv + ["--new-items"] if argv == ["train", "hgnn"]
            else argv + ["--warm-start"] if argv == ["train", "two-tower"] else argv
            for argv in plan]
