"""What a Spark setting (warehouse.engine or features.offline_store: spark) needs installed."""

from __future__ import annotations

import importlib.util
import os
import shutil

from gfm.errors import GfmError


def require_spark(setting: str, modules: tuple[str, ...] = ("pyspark",)) -> None:
    """Raise a GfmError that says what to install when `modules` or a Java runtime are missing
    (the `spark` extra is optional; `make setup` leaves it out)."""
    missing = [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None
               or importlib.util.find_spec(m) is None]
    if missing:
        raise GfmError(f"{setting} is spark, but {' and '.join(missing)} are not installed: "
                       f"`pip install -e \".[spark]\"` (or `make setup-spark`), or set "
                       f"{setting}: duckdb")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise GfmError(f"{setting} is spark, but no Java runtime was found: install Java 17 "
                       "(`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME")
