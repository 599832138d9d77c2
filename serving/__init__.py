"""Serving: item-tower vectors in Milvus (`gfm index`) and the BentoML service (`gfm serve`).

    milvus.py    where the index lives, its collection name, its manifest
    index.py     `gfm index`: encode every top-level item, build the collection, measure recall
    engine.py    the recommender itself (Feast online reads, towers, Milvus search), no HTTP
    schemas.py   request and response models, with their bounds
    service.py   the `@bentoml.service` class over the engine
    http.py      the ASGI edge in front of it: body limit, JSON only, /readyz, OpenAPI

Nothing here is imported by `import serving`: torch, Feast and BentoML load on use.
See docs/serving.md.
"""
