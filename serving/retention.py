"""Retire what a daily refresh leaves behind: served-model versions beyond
serving.keep_versions, with their Milvus collections and FeatureServices, and the HGNN views no
kept model reads.

Each refresh adds a model version, a FeatureService that pins its views, and a Milvus
collection; without retirement they pile up (and every active HGNN version's user averages are
rebuilt on each refresh). The served model and the newest `keep` versions stay, so a running
server that has not yet swapped (serving/service.py) still finds its model and index. A
model's parquet feature files stay on disk (lineage); what leaves is the registry entry, the
online rows, the collection and the model-store entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gfm.config import Config
from gfm.errors import GfmError
from gfm.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class Retired:
    models: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # left for the next refresh, with why

    def summary(self) -> str:
        parts = [f"{len(self.models)} model(s)", f"{len(self.collections)} collection(s)",
                 f"{len(self.features)} feature view(s) or service(s)"]
        return "retired " + ", ".join(parts) + ("" if not self.problems else
                                                 f"; left for later: {'; '.join(self.problems)}")


def served_models(workspace: Workspace) -> list[tuple[str, dict]]:
    """(tag, metadata) of every version of the served model's name, newest first."""
    from training.two_tower.store import SERVED_MODEL_NAME, bentoml_home, model_store

    bentoml_home(workspace)
    models = [m for m in model_store(workspace).list() if m.tag.name == SERVED_MODEL_NAME]
    models.sort(key=lambda m: m.creation_time, reverse=True)
    return [(str(m.tag), dict(m.info.metadata)) for m in models]


def retire_old_versions(workspace: Workspace, config: Config, keep: int) -> Retired:
    """Retire the served model's versions beyond the newest `keep` (never the served one)."""
    from feature_store import core as feature_store
    from feature_store.versions import ACTIVE, HGNN, USER_AVG, FeatureVersions, view_name
    from serving import milvus
    from training.two_tower.store import model_store, served_tag

    done = Retired()
    served = served_tag(workspace)
    models = served_models(workspace)
    kept = [(tag, meta) for i, (tag, meta) in enumerate(models) if i < keep or tag == served]
    kept_tags = {tag for tag, _ in kept}
    old = [(tag, meta) for tag, meta in models if tag not in kept_tags]
    client = None
    if old:
        try:
            client = milvus.connect(milvus.resolve_uri(workspace, config.serving))
        except GfmError as exc:
            done.problems.append(f"collections ({exc})")
    state = FeatureVersions.load(workspace)
    for tag, meta in old:
        version = meta["model_version"]
        if client is not None:
            name = milvus.collection_name(version)
            if client.has_collection(name):
                client.drop_collection(name)
                done.collections.append(name)
            milvus.manifest_path(workspace, name).unlink(missing_ok=True)
        service = meta.get("feature_service")
        if service in state.services and state.services[service]["status"] == ACTIVE:
            done.features += feature_store.retire(workspace, config, service)
        model_store(workspace).delete(tag)
        done.models.append(tag)
    if client is not None:
        client.close()

    # HGNN versions no kept model reads, but the newest (the next refresh's input): their
    # user averages first (`gfm features apply` would rebuild them otherwise), then the view.
    state = FeatureVersions.load(workspace)
    read = {meta.get("hgnn_version") for _, meta in kept}
    for version, entry in state.entries(HGNN)[:-1]:
        if version in read:
            continue
        user_avg = state.views[USER_AVG].get(version)
        if user_avg is not None and user_avg["status"] == ACTIVE:
            done.features += feature_store.retire(
                workspace, config, view_name(USER_AVG, user_avg["number"]), cascade=True)
        done.features += feature_store.retire(workspace, config,
                                              view_name(HGNN, entry["number"]), cascade=True)
    log.info(done.summary())
    return done
