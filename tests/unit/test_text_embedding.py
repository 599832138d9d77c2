import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gfm.config import load_config, parse_overrides
from gfm.errors import GfmError
from gfm.workspace import Workspace
from ingest.contract import arrow_schema
from transforms.text_embedding import (
    TEXT_TEMPLATE_VERSION,
    embed_items,
    item_text,
    latest_text_embedding,
    load_text_model,
)

ITEMS = [
    ("pc1", "podcast", None, "The Crime Hour", "Detectives and trials.", "en", "True Crime",
     dt.datetime(2024, 1, 5, 8, 0)),
    ("pc1-e1", "episode", "pc1", "Ep. 1: The verdict", "A jury decides.", "en", "True Crime",
     dt.datetime(2024, 2, 1, 12, 30)),
    ("ab1", "audiobook", None, "Stars and Planets", None, "de", None,
     dt.datetime(2023, 6, 1)),
    ("ab2", "audiobook", None, "Cooking at Home", "Recipes for every day.", "sv", "Food",
     dt.datetime(2025, 3, 2, 23, 59, 59)),
]


def write_items(root, rows):
    columns = list(zip(*rows))
    table = pa.Table.from_arrays([pa.array(c) for c in columns], schema=arrow_schema("items"))
    (root / "raw").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "raw" / "items.parquet")
    return Workspace.at(root)


@pytest.fixture(scope="module")
def text_model():
    return load_text_model(None)  # the packaged all-MiniLM-L6-v2: ~8 s, once per module


@pytest.fixture
def config():
    return load_config(overrides=parse_overrides(["embed.batch_size=2"]))


def test_item_text_template():
    assert TEXT_TEMPLATE_VERSION
    assert (item_text("The Crime Hour", "Detectives and  trials.\n", "podcast", "True Crime")
            == "The Crime Hour (podcast; True Crime). Detectives and trials.")
    assert item_text(" Stars ", None, "audiobook", None) == "Stars (audiobook)"
    assert item_text("Stars", "  ", "audiobook", "") == "Stars (audiobook)"


def test_embeds_every_item_as_unit_float32_vectors(tmp_path, config, text_model):
    workspace = write_items(tmp_path, ITEMS)
    run = embed_items(workspace, config, model=text_model)
    assert (run.n_items, run.n_encoded, run.n_reused, run.existed) == (4, 4, 0, False)
    assert run.path == workspace.features_dir / "item_text_embedding" / f"{run.version}.parquet"
    assert run.version.startswith("all_minilm_l6_v2_")
    assert run.version.replace("_", "").isalnum()

    table = pq.read_table(run.path)
    assert table.schema.field("item_id").type == pa.string()
    assert table.schema.field("event_timestamp").type == pa.timestamp("us")
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    rows = {r["item_id"]: r for r in table.to_pylist()}
    assert set(rows) == {r[0] for r in ITEMS}  # episodes included
    for item in ITEMS:
        assert rows[item[0]]["event_timestamp"] == item[7]  # valid from the item's release
        assert rows[item[0]]["model_id"] == run.model_id
        assert rows[item[0]]["text_version"] == TEXT_TEMPLATE_VERSION
    vectors = np.array([rows[r[0]]["embedding"] for r in ITEMS], dtype=np.float32)
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The same text as a bare encode: the stored vector belongs to its item.
    expected = text_model.encode([item_text(r[3], r[4], r[1], r[6]) for r in ITEMS])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)

    meta = json.loads(run.metadata_path.read_text())
    assert (meta["model_id"], meta["dimension"], meta["n_items"]) == (run.model_id, 384, 4)
    assert meta["text_template_version"] == TEXT_TEMPLATE_VERSION
    assert latest_text_embedding(workspace) == run.path


def test_rerun_encodes_only_what_changed(tmp_path, config, text_model):
    workspace = write_items(tmp_path, ITEMS)
    first = embed_items(workspace, config, model=text_model)
    first_bytes = first.path.read_bytes()

    again = embed_items(workspace, config, model=text_model)
    assert again.existed and again.version == first.version
    assert (again.n_encoded, again.n_reused) == (0, 4)

    changed = [list(r) for r in ITEMS]
    changed[2][3] = "Stars, Planets and Moons"  # ab1's title
    write_items(tmp_path, [tuple(r) for r in changed])
    second = embed_items(workspace, config, model=text_model)
    assert second.version != first.version
    assert (second.n_encoded, second.n_reused) == (1, 3)
    assert first.path.read_bytes() == first_bytes  # the old version stays as it was
    assert latest_text_embedding(workspace) == second.path

    old = {r["item_id"]: r["embedding"] for r in pq.read_table(first.path).to_pylist()}
    new = {r["item_id"]: r["embedding"] for r in pq.read_table(second.path).to_pylist()}
    assert [i for i in old if old[i] != new[i]] == ["ab1"]

    # Back to the first items: the first version is recognised, and is the latest again.
    write_items(tmp_path, ITEMS)
    back = embed_items(workspace, config, model=text_model)
    assert back.existed and back.version == first.version
    assert latest_text_embedding(workspace) == first.path


def test_changed_release_time_is_a_new_version(tmp_path, config, text_model):
    workspace = write_items(tmp_path, ITEMS)
    first = embed_items(workspace, config, model=text_model)
    moved = [list(r) for r in ITEMS]
    moved[0][7] = dt.datetime(2024, 1, 6)
    write_items(tmp_path, [tuple(r) for r in moved])
    second = embed_items(workspace, config, model=text_model)
    assert second.version != first.version
    assert (second.n_encoded, second.n_reused) == (0, 4)
    stamps = {r["item_id"]: r["event_timestamp"] for r in pq.read_table(second.path).to_pylist()}
    assert stamps["pc1"] == dt.datetime(2024, 1, 6)


def test_bad_model_path_is_refused(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(GfmError, match="does not exist"):
        load_text_model(str(missing))
    workspace = write_items(tmp_path, ITEMS)
    config = load_config(overrides=parse_overrides([f"embed.model_path={missing}"]))
    with pytest.raises(GfmError, match="embed.model_path"):
        embed_items(workspace, config)
    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    with pytest.raises(GfmError, match="sentence-transformers"):
        load_text_model(str(not_a_model))


def test_no_embeddings_yet(tmp_path):
    with pytest.raises(GfmError, match="gfm embed"):
        latest_text_embedding(Workspace.at(tmp_path))
