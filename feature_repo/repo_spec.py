"""What this workspace holds: versions, file paths, lineage tags (feature_repo.json beside this).

`gfm features apply` writes feature_repo.json; the other modules only read it, so importing
them (as `feast apply` does with every .py file here) has no side effects. Its file paths are
relative to the workspace (this directory's parent), so a copied or moved workspace names its
own files; they are made absolute here because Feast's DuckDB offline store reads a
FileSource's path as it is (relative to the working directory).
"""

import json
from pathlib import Path

SPEC_FILE = Path(__file__).resolve().parent / "feature_repo.json"
WORKSPACE = SPEC_FILE.parent.parent


def load_spec() -> dict:
    if not SPEC_FILE.exists():
        raise FileNotFoundError(
            f"{SPEC_FILE} is missing. This directory is the template of the feature repository: "
            "run `gfm features apply --workdir W` and point Feast at the workspace's copy, "
            'feast -c "$(gfm features path --workdir W)" ...'
        )
    spec = json.loads(SPEC_FILE.read_text())
    spec["tables"] = {name: str(WORKSPACE / path) for name, path in spec["tables"].items()}
    for entries in spec.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "path" in entry:
                entry["path"] = str(WORKSPACE / entry["path"])
    return spec


SPEC = load_spec()


def entry(kind: str, name: str) -> dict:
    """The feature_repo.json entry of one versioned view or service (registered.py's input)."""
    for found in SPEC[kind]:
        if found["name"] == name:
            return found
    raise KeyError(f"{name} is not in {SPEC_FILE} under {kind}: rerun `gfm features apply`")
