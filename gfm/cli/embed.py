"""`gfm embed`: Sentence-BERT text vectors of every item -> features/item_text_embedding/."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context


def register(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "embed",
        help="encode each item's text (title, type, genre, description) with sentence-transformers "
             "into <workdir>/features/item_text_embedding/<version>.parquet; only new or changed "
             "texts are encoded (model: --set embed.model_path=DIR, default the packaged "
             "all-MiniLM-L6-v2)",
    )


def run(args: argparse.Namespace, ctx: Context) -> None:
    from transforms.text_embedding import embed_items  # torch is slow to import; only when needed

    result = embed_items(ctx.workspace, ctx.config)
    if result.existed:
        print(f"text embeddings {result.version} already exist for these items and this model: "
              f"nothing to do ({result.path})")
        return
    print(f"text embeddings {result.version}: {result.n_items:,} items, {result.n_encoded:,} "
          f"encoded, {result.n_reused:,} reused from the cache")
    print(f"wrote {result.path} (model {result.model_id})")
