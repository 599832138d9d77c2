"""registered.py, the generated module that declares a feature repository's versioned sources,
views and services: every version of the spec becomes one assignment, every service names its
views (and feature selections) one by one, in the spec's order."""

from __future__ import annotations

import sys
import types

from feature_store.repo import UNVERSIONED_VIEWS, VERSIONED_BUILDERS, registered_module


def _spec() -> dict:
    def versions(kind: str, n: int) -> list[dict]:
        return [{"name": f"{kind}_v{i}"} for i in range(1, n + 1)]

    return {
        "item_text_embedding": versions("item_text_embedding", 2),
        "item_hgnn_embedding": versions("item_hgnn_embedding", 1),
        "user_avg_hgnn": versions("user_avg_hgnn", 1),
        "feature_services": [{"name": "two_tower_features_v1", "views": [
            {"view": "item_text_embedding_v2", "features": None},
            {"view": "item_hgnn_embedding_v1", "features": ["hgnn_embedding"]},
            {"view": "item_metadata", "features": None},
        ]}],
    }


class _View:
    """Stands in for a Feast FeatureView: remembers what built it and what was selected."""

    def __init__(self, *made_by):
        self.made_by, self.selected = made_by, None

    def __getitem__(self, features):
        view = _View(*self.made_by)
        view.selected = features
        return view


def _source_builder(builder: str):
    return lambda entry: ("source", builder, entry["name"])


def _view_builder(builder: str):
    return lambda entry, source: _View(builder, entry["name"], source)


def test_every_version_and_service_is_one_assignment(monkeypatch):
    spec = _spec()
    by_name = {e["name"]: (kind, e) for kind, entries in spec.items() for e in entries}

    def entry(kind: str, name: str) -> dict:
        assert by_name[name][0] == kind, (kind, name)
        return by_name[name][1]

    modules = {
        "repo_spec": {"entry": entry},
        "data_sources": {s: _source_builder(s) for s, _ in VERSIONED_BUILDERS.values()},
        "feature_views": {**{v: _view_builder(v) for _, v in VERSIONED_BUILDERS.values()},
                          **{name: _View("static", name) for name in UNVERSIONED_VIEWS}},
        "feature_services": {"feature_service": lambda entry, views: ("service", entry["name"],
                                                                      views)},
    }
    for name, attributes in modules.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attributes))

    code = registered_module(spec)
    namespace: dict = {}
    exec(compile(code, "registered.py", "exec"), namespace)  # noqa: S102 (our own output)

    text2 = namespace["item_text_embedding_v2"]
    assert text2.made_by == ("text_view", "item_text_embedding_v2",
                             ("source", "text_source", "item_text_embedding_v2"))
    assert namespace["item_text_embedding_v1"].made_by[1] == "item_text_embedding_v1"
    assert namespace["user_avg_hgnn_v1"].made_by[0] == "user_avg_view"
    assert namespace["item_hgnn_embedding_v1_source"] == ("source", "hgnn_source",
                                                          "item_hgnn_embedding_v1")
    kind, name, views = namespace["two_tower_features_v1"]
    assert (kind, name) == ("service", "two_tower_features_v1")
    assert [v.made_by[1] for v in views] == ["item_text_embedding_v2", "item_hgnn_embedding_v1",
                                             "item_metadata"]
    assert [v.selected for v in views] == [None, ["hgnn_embedding"], None]
    # one line per declaration: a reader finds each name by searching for "<name> ="
    versioned = [n for n, (kind, _) in by_name.items() if kind != "feature_services"]
    for declared in [*by_name, *(f"{n}_source" for n in versioned)]:
        assert sum(line.startswith(f"{declared} = ") for line in code.splitlines()) == 1
