"""Where every stage reads and writes: all artefacts live under one workspace directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RAW_TABLES = ("items", "users", "interactions")


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, workdir: str | Path) -> "Workspace":
        return cls(Path(workdir).expanduser().resolve())

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    def raw_path(self, table: str) -> Path:
        return self.raw_dir / f"{table}.parquet"

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def dbt_dir(self) -> Path:
        """dbt's target/ and logs/ for this workspace (never inside the source tree)."""
        return self.root / "dbt"

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def has_raw_data(self) -> bool:
        return all(self.raw_path(t).exists() for t in RAW_TABLES)

    def ensure(self) -> "Workspace":
        self.root.mkdir(parents=True, exist_ok=True)
        return self
