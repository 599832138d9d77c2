"""The two-tower models in the BentoML model store of a workspace, and which one is served.

BENTOML_HOME is the workspace's `bentoml/` (never the user's home), telemetry off. Only
`gfm train two-tower` moves the serving pointer; evaluation variants are saved under their own
names and never become the served default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch

from gfm.errors import WorkspaceError
from gfm.files import atomic_write_text
from gfm.workspace import Workspace
from training.two_tower.config import TwoTowerConfig
from training.two_tower.data import ItemInputs, UserInputs, Vocabulary, item_inputs, user_inputs
from training.two_tower.model import TwoTowerModel

SERVED_MODEL_NAME = "unified_2t"
WEIGHTS_FILE = "two_tower.pt"
# 2: learned item ids, history pooling and the popularity prior (models of format 1 lack them)
PAYLOAD_FORMAT = 2


def bentoml_home(workspace: Workspace) -> str:
    home = str(workspace.root / "bentoml")
    os.environ["BENTOML_HOME"] = home
    os.environ["BENTOML_DO_NOT_TRACK"] = "True"
    return home


def model_store(workspace: Workspace):
    """The workspace's BentoML model store, passed explicitly to every call: BentoML binds its
    default store to the first BENTOML_HOME a process sees, so with two workspaces in one
    process (tests, notebooks, the paper experiments) the default would be the wrong one."""
    from bentoml._internal.models import ModelStore

    path = workspace.root / "bentoml" / "models"
    path.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(path))


def _serving_pointer(workspace: Workspace):
    return workspace.models_dir / "two_tower" / "serving.json"


@dataclass
class TwoTowerBundle:
    """A trained model with everything needed to encode users and items for it."""

    model: TwoTowerModel
    config: TwoTowerConfig
    item_vocab: Vocabulary
    user_vocab: Vocabulary
    item_types: list[str]
    hgnn_dim: int
    text_dim: int
    metadata: dict[str, Any]
    id_index: dict[str, int]  # item id -> learned-id index (and its log q); 0 = unknown

    @property
    def vector_dim(self) -> int:
        """Width of the scoring vectors (TwoTowerModel.item_vectors / user_vectors)."""
        return self.model.out_dim + (1 if self.model.has_prior else 0)

    def item_inputs(self, frame) -> ItemInputs:
        """The item tower's inputs from a frame of item features (item_id, hgnn_embedding,
        text_embedding, metadata): the same encoding for training, evaluation and serving."""
        return item_inputs(frame, self.item_vocab, self.hgnn_dim, self.text_dim, self.id_index)

    def user_inputs(self, frame) -> UserInputs:
        """The user tower's inputs from a frame of user features and history lists."""
        return user_inputs(frame, self.user_vocab, self.item_types, self.hgnn_dim, self.id_index)

    @property
    def version(self) -> str:
        return self.metadata["model_version"]

    @property
    def feature_service(self) -> str:
        return self.metadata["feature_service"]


def save_bundle(workspace: Workspace, name: str, bundle: TwoTowerBundle, serve: bool) -> str:
    """Save to the model store as name:<model_version>; return the tag."""
    bentoml_home(workspace)
    import bentoml

    payload = {
        "state_dict": bundle.model.state_dict(),
        "config": bundle.config.__dict__,
        "item_vocab": bundle.item_vocab.codes,
        "user_vocab": bundle.user_vocab.codes,
        "item_types": bundle.item_types,
        "hgnn_dim": bundle.hgnn_dim,
        "text_dim": bundle.text_dim,
        "metadata": bundle.metadata,
        "item_ids": sorted(bundle.id_index, key=bundle.id_index.__getitem__),
        "format": PAYLOAD_FORMAT,
    }
    # BentoML metadata values must be simple: nested structures as JSON strings.
    metadata = {k: v if isinstance(v, (str, int, float, bool)) else json.dumps(v)
                for k, v in bundle.metadata.items()}
    with bentoml.models.create(name=f"{name}:{bundle.version}", metadata=metadata,
                               labels={"kind": "two_tower"},
                               _model_store=model_store(workspace)) as model_ref:
        torch.save(payload, os.path.join(model_ref.path, WEIGHTS_FILE))
    tag = f"{name}:{bundle.version}"
    if serve:
        atomic_write_text(_serving_pointer(workspace), json.dumps({"tag": tag}) + "\n")
    return tag


def served_tag(workspace: Workspace) -> str:
    pointer = _serving_pointer(workspace)
    if not pointer.exists():
        raise WorkspaceError(
            f"no served two-tower model in {workspace.root}: run `gfm train two-tower` first"
        )
    return json.loads(pointer.read_text())["tag"]


def load_bundle(workspace: Workspace, tag: str | None = None) -> TwoTowerBundle:
    bentoml_home(workspace)
    import bentoml

    tag = tag or served_tag(workspace)
    try:
        model_ref = bentoml.models.get(tag, _model_store=model_store(workspace))
    except bentoml.exceptions.NotFound:
        raise WorkspaceError(f"model {tag} is not in {workspace.root / 'bentoml'}") from None
    return bundle_from_file(os.path.join(model_ref.path, WEIGHTS_FILE))


def bundle_from_file(path: str | os.PathLike) -> TwoTowerBundle:
    """A bundle from the weights file inside a model-store entry."""
    payload = torch.load(path, weights_only=False, map_location="cpu")  # trained on any device
    if payload.get("format", 1) != PAYLOAD_FORMAT:
        raise WorkspaceError(f"{path} holds a two-tower model of an older format: retrain it "
                             "with `gfm train two-tower`")
    # A model saved before a setting existed ran as that setting's off value.
    config = TwoTowerConfig(**{"unknown_user_prior_only": False, "new_item_knn": 0,
                               **payload["config"]})
    item_vocab, user_vocab = Vocabulary(payload["item_vocab"]), Vocabulary(payload["user_vocab"])
    id_index = {item: n + 1 for n, item in enumerate(payload["item_ids"])}
    model = TwoTowerModel(config, payload["hgnn_dim"], payload["text_dim"], payload["item_types"],
                          item_vocab.sizes(), user_vocab.sizes(), n_item_ids=len(id_index))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return TwoTowerBundle(model, config, item_vocab, user_vocab, payload["item_types"],
                          payload["hgnn_dim"], payload["text_dim"], payload["metadata"], id_index)
