"""A non-editable install (`pip install .`): the wheel carries the dbt project and the Feast
repository templates, and the installed gfm runs dbt from its own copy, not the checkout's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PROJECT_FOLDERS = ("dbt", "feature_repo")


def _source_files() -> list[str]:
    """The checkout's files as a clone would have them (tracked, or new and not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [f for f in listed.split("\0") if f and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory) -> Path:
    """This checkout's wheel, built offline and unpacked as site-packages holds it."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for name in _source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                            "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_wheel_carries_the_dbt_project_and_the_feast_templates(site_packages):
    for folder in PROJECT_FOLDERS:
        in_checkout = {Path(f).relative_to(folder).as_posix() for f in _source_files()
                       if f.startswith(f"{folder}/")}
        installed = site_packages / "gfm" / "project" / folder
        in_wheel = {p.relative_to(installed).as_posix() for p in installed.rglob("*")
                    if p.is_file()}
        assert in_checkout and in_wheel == in_checkout, (folder, in_checkout ^ in_wheel)


def test_the_installed_gfm_runs_dbt_from_its_own_copy(site_packages, tiny_raw_workspace,
                                                        tmp_path):
    workdir = tmp_path / "ws"
    shutil.copytree(tiny_raw_workspace, workdir)
    script = ("import sys, gfm.paths, gfm.cli.main as m; "
              "print('GFM', gfm.paths.__file__); print('DBT', gfm.paths.project_dir('dbt')); "
              f"sys.exit(m.main(['dbt', '--workdir', {str(workdir)!r}, '--', 'ls', "
              "'--resource-type', 'model', '--output', 'name']))")
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines()
                 if line.startswith(("GFM ", "DBT ")))
    assert Path(lines["GFM"]).is_relative_to(site_packages), lines
    assert Path(lines["DBT"]) == site_packages / "gfm" / "project" / "dbt", lines
    assert {"item_catalog", "user_history", "co_interaction_edges"} <= set(done.stdout.split())
