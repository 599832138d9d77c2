"""Offline evaluation: HR@10 per item type on the hold-out, for any retriever (DESIGN.md)."""

from evaluation.evaluate import MODELS, evaluate_retriever, evaluate_retrievers, write_reports
from evaluation.retrievers import (
    ALSRetriever,
    ModelUnavailable,
    PopularityRetriever,
    Retriever,
    VectorKNNRetriever,
    load_item_vectors,
)
from evaluation.split import EvalSplit, Ragged, load_split

__all__ = [
    "ALSRetriever",
    "EvalSplit",
    "MODELS",
    "ModelUnavailable",
    "PopularityRetriever",
    "Ragged",
    "Retriever",
    "VectorKNNRetriever",
    "evaluate_retriever",
    "evaluate_retrievers",
    "load_item_vectors",
    "load_split",
    "write_reports",
]
