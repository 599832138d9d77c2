"""What this workspace holds: versions, file paths, lineage tags (feature_repo.json beside this).

`gfm features apply` writes feature_repo.json; the other modules only read it, so importing
them (as `feast apply` does with every .py file here) has no side effects.
"""

import json
from pathlib import Path

SPEC_FILE = Path(__file__).resolve().parent / "feature_repo.json"


def load_spec() -> dict:
    if not SPEC_FILE.exists():
        raise FileNotFoundError(
            f"{SPEC_FILE} is missing. This directory is the template of the feature repository: "
            "run `gfm features apply --workdir W` and point Feast at the workspace's copy, "
            'feast -c "$(gfm features path --workdir W)" ...'
        )
    return json.loads(SPEC_FILE.read_text())


SPEC = load_spec()
