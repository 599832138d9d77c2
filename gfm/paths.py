"""Where the project's non-Python parts are: the dbt project and the Feast repository templates.

In a source checkout (and an editable install) they are the top-level folders `dbt/` and
`feature_repo/`. An installed wheel (`pip install .`) carries them as package data under
`gfm/project/` (pyproject.toml's [tool.setuptools.package-dir]), so the same code runs from both.
"""

from __future__ import annotations

from pathlib import Path

from gfm.errors import GfmError

PACKAGE_DIR = Path(__file__).resolve().parent
# A file each folder must hold: how a checkout's folder is told from an unrelated one of the
# same name (site-packages holds dbt-core's `dbt` package).
MARKERS = {"dbt": "dbt_project.yml", "feature_repo": "feature_store.yaml"}


def project_dir(name: str) -> Path:
    """The folder `dbt` or `feature_repo`: the installed copy, else the checkout's."""
    marker = MARKERS[name]
    for candidate in (PACKAGE_DIR / "project" / name, PACKAGE_DIR.parent / name):
        if (candidate / marker).is_file():
            return candidate
    raise GfmError(f"the {name}/ folder of gfm-personalization is missing (looked in "
                   f"{PACKAGE_DIR / 'project'} and {PACKAGE_DIR.parent}): reinstall the package "
                   "(`pip install .`, or `pip install -e .` in a checkout)")


def source_checkout() -> Path | None:
    """The source checkout the packages run from (it has pyproject.toml), or None for an
    installed wheel."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "gfm").is_dir() else None
