"""Retrievers: anything that scores every candidate item of an EvalSplit for a batch of users.

A model joins the evaluation by implementing `Retriever.score` (exact scoring over the whole
catalogue; the evaluator batches the users so memory stays bounded). The baselines here:
- popularity: streams in the training window [cutoff - history_days, cutoff);
- vector KNN (text-KNN, HGNN-KNN): a user is the mean of the L2-normalised vectors of the items
  in their history at the cutoff, scored by cosine;
- ALS (implicit): matrix factorisation of user x item stream counts in the training window;
- EASE (Steck, WWW 2019): a closed-form item-item model on the same user x item matrix.
Users a model knows nothing about (no history, no training streams) get popularity scores.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from evaluation.split import EvalSplit
from gfm.errors import GfmError, WorkspaceError

logger = logging.getLogger(__name__)

# Score of a candidate that has no vector: below every cosine, so it ranks after all others.
MISSING_VECTOR_SCORE = -2.0


class ModelUnavailable(GfmError):
    """A model cannot be built in this workspace (its inputs do not exist); the message says why."""


class Retriever(ABC):
    """Scores all candidate items of `split` for a batch of its users."""

    source: str | None = None  # what the model was built from (a file, a model version): lineage
    settings: dict | None = None  # the hyper-parameters it ran with (reported beside its metrics)

    def __init__(self, split: EvalSplit) -> None:
        self.split = split

    @abstractmethod
    def score(self, user_indices: np.ndarray) -> np.ndarray:
        """(len(user_indices), split.n_items) finite scores (float32 preferred), higher is
        better, for every candidate: the evaluator ranks each type's candidates by them and
        removes history items itself."""

    def popularity_scores(self, n_rows: int) -> np.ndarray:
        """(n_rows, n_items) popularity rows: the fallback for users a model cannot represent."""
        return np.tile(self.split.item_popularity.astype(np.float32), (n_rows, 1))


class PopularityRetriever(Retriever):
    """The same ranking for everyone: most streamed in the training window first."""

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        return self.popularity_scores(len(user_indices))


def load_item_vectors(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids, (n, dim) float32 matrix) from a parquet file with columns item_id, embedding
    (a list or fixed-size list of floats)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["item_id", "embedding"])
    except (pa.ArrowException, KeyError, OSError) as exc:
        raise WorkspaceError(
            f"{path} is not a vector file with columns item_id and embedding ({exc}): rerun the "
            "stage that wrote it, or move it aside"
        ) from None
    column = table.column("embedding").combine_chunks()
    lengths = np.asarray(pc.list_value_length(column).fill_null(-1))
    if len(lengths) and ((lengths != lengths[0]).any() or (lengths < 0).any()):
        raise WorkspaceError(f"{path}: embeddings are null or of different lengths: rerun the "
                             "stage that wrote it")
    dim = int(lengths[0]) if len(lengths) else 0
    matrix = np.asarray(column.flatten(), dtype=np.float32).reshape(len(column), dim)
    ids = np.asarray(table.column("item_id").to_pylist(), dtype=object)
    return ids, matrix


class VectorKNNRetriever(Retriever):
    """Cosine between the mean of a user's normalised history vectors and each item's vector."""

    def __init__(
        self,
        split: EvalSplit,
        item_vectors: Mapping[str, np.ndarray] | np.ndarray | tuple[np.ndarray, np.ndarray],
    ) -> None:
        """`item_vectors`: {item_id: vector}, (item_ids, matrix), or a (split.n_items, dim) matrix
        aligned with split.item_ids (an all-zero row = no vector). Items outside the split are
        ignored; candidates without a vector score MISSING_VECTOR_SCORE."""
        super().__init__(split)
        if isinstance(item_vectors, np.ndarray):
            if item_vectors.ndim != 2 or len(item_vectors) != split.n_items:
                raise ValueError(
                    "a vector matrix must be (split.n_items, dim), aligned with split.item_ids"
                )
            vectors = np.asarray(item_vectors, dtype=np.float32)
        else:
            if isinstance(item_vectors, Mapping):
                ids = list(item_vectors.keys())
                matrix = np.asarray(list(item_vectors.values()), dtype=np.float32)
                matrix = matrix.reshape(len(ids), -1)
            else:
                ids, matrix = list(item_vectors[0]), np.asarray(item_vectors[1], dtype=np.float32)
            # Rows in file order: if an item appears twice, the later row wins.
            positions = np.fromiter((split.item_index.get(i, -1) for i in ids), dtype=np.int64,
                                    count=len(ids))
            _, first_from_end = np.unique(positions[::-1], return_index=True)
            last = len(positions) - 1 - first_from_end  # each position's last row
            last = last[positions[last] >= 0]  # items that are candidates
            vectors = np.zeros((split.n_items, matrix.shape[1]), dtype=np.float32)
            vectors[positions[last]] = matrix[last]
        norms = np.linalg.norm(vectors, axis=1)
        self.has_vector = norms > 0
        self.vectors = np.divide(vectors, norms[:, None], out=np.zeros_like(vectors),
                                 where=self.has_vector[:, None])
        # (n_items,) added to every user's scores (lift_new_items); None: none
        self.new_item_offsets: np.ndarray | None = None
        missing = int((~self.has_vector).sum())
        if missing:
            logger.warning("%d of %d candidate items have no vector: they rank last",
                           missing, split.n_items)

    def lift_new_items(self, exposure: float) -> dict[str, dict]:
        """Add, per item type, the smallest score to the split's new items (released since the
        cutoff) at which they take `exposure` x their catalogue share of the top-10 slots of a
        fixed sample of users with history (training.two_tower.new_items.solve_offsets, as the
        served two-tower's new_item_exposure: it reads no interaction after the cutoff).
        Returns the solved offsets by item type (offset, target and reached share, new items)."""
        from training.two_tower.new_items import exposure_sample, solve_offsets

        self.new_item_offsets = None
        split = self.split
        with_history = split.user_ids[split.has_history]
        sample = np.asarray([split.user_index[u] for u in exposure_sample(list(with_history))],
                            dtype=np.int64)
        types = np.asarray(split.item_types)
        codes = {t: i for i, t in enumerate(split.types)}
        solved = solve_offsets(self.score(sample), split.is_new_item & self.has_vector,
                               np.fromiter((codes[t] for t in types), np.int64, len(types)),
                               exposure)
        offsets = np.zeros(split.n_items, dtype=np.float32)
        report = {}
        for code, s in solved.items():
            t = split.types[code]
            offsets[(types == t) & split.is_new_item] = s["offset"]
            report[t] = {k: round(v, 5) if isinstance(v, float) else v for k, v in s.items()}
        self.new_item_offsets = offsets
        logger.info("new items' offset for exposure %s on %d users: %s", exposure, len(sample),
                    ", ".join(f"{t} {s['offset']:.4f} ({s['new_items']} new, {s['share']:.2%} of "
                              "the top-10 slots)" for t, s in report.items()))
        return report

    @classmethod
    def from_parquet(cls, split: EvalSplit, path: str | Path) -> VectorKNNRetriever:
        return cls(split, load_item_vectors(path))

    def user_vectors(self, user_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(batch, dim) unit user vectors and (batch,) bool: the user has a history vector."""
        local, items = self.split.histories.take(user_indices)
        keep = self.has_vector[items]
        local, items = local[keep], items[keep]
        sums = np.zeros((len(user_indices), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, local, self.vectors[items])
        # The mean's direction is the sum's: normalising the sum gives the cosine directly.
        norms = np.linalg.norm(sums, axis=1)
        known = norms > 0
        users = np.divide(sums, norms[:, None], out=np.zeros_like(sums), where=known[:, None])
        return users, known

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        users, known = self.user_vectors(user_indices)
        scores = users @ self.vectors.T  # (batch, n_items) cosine
        if self.new_item_offsets is not None:
            scores += self.new_item_offsets
        scores[:, ~self.has_vector] = MISSING_VECTOR_SCORE
        if not known.all():
            scores[~known] = self.popularity_scores(int((~known).sum()))
        return scores


class ALSRetriever(Retriever):
    """implicit's AlternatingLeastSquares (CPU) on user x item stream counts in the training
    window [cutoff - history_days, cutoff)."""

    def __init__(
        self,
        split: EvalSplit,
        factors: int = 32,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 7,
        show_progress: bool = False,
    ) -> None:
        super().__init__(split)
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        user_items = sp.csr_matrix(
            (split.train_count.astype(np.float32), (split.train_user, split.train_item)),
            shape=(split.n_users, split.n_items),
        )
        if user_items.nnz == 0:
            raise ModelUnavailable("ALS: no streams in the training window before the cutoff")
        logger.info("ALS: %d factors on %d users x %d items, %d non-zeros",
                    factors, split.n_users, split.n_items, user_items.nnz)
        # implicit parallelises over users itself; a threaded BLAS underneath slows it down (and
        # implicit warns about it when the model is created).
        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(
                factors=factors, regularization=regularization, alpha=alpha,
                iterations=iterations, random_state=seed,
            )
            self.model.fit(user_items, show_progress=show_progress)
        self.user_factors = np.asarray(self.model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(self.model.item_factors, dtype=np.float32)
        self.known = np.diff(user_items.indptr) > 0

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        user_indices = np.asarray(user_indices, dtype=np.int64)
        scores = self.user_factors[user_indices] @ self.item_factors.T  # (batch, n_items)
        known = self.known[user_indices]
        if not known.all():
            scores[~known] = self.popularity_scores(int((~known).sum()))
        return scores


class EASERetriever(Retriever):
    """EASE (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019): item-item weights
    B = argmin ||X - XB||^2 + l2 ||B||^2 with diag(B) = 0, in closed form from the inverse of the
    Gram matrix; X is binary user x item (streamed in the training window). A user's scores are
    the sum of B's rows of the items they streamed. Memory: one (n_items x n_items) float64
    matrix, which is why `evaluation.ease_max_items` bounds the catalogue it runs on."""

    def __init__(self, split: EvalSplit, l2: float = 500.0, max_items: int = 20_000) -> None:
        super().__init__(split)
        import scipy.sparse as sp

        if split.n_items > max_items:
            raise ModelUnavailable(
                f"EASE: {split.n_items:,} candidate items is above evaluation.ease_max_items "
                f"({max_items:,}); its item x item matrix would need "
                f"{8 * split.n_items ** 2 / 2**30:.1f} GiB")
        if l2 <= 0:
            raise GfmError(f"EASE: l2 must be positive, got {l2}")
        user_items = sp.csr_matrix(
            (np.ones(len(split.train_user), dtype=np.float64), (split.train_user, split.train_item)),
            shape=(split.n_users, split.n_items),
        )
        user_items.data[:] = 1.0  # duplicates (user, item) pairs summed above: binary again
        if user_items.nnz == 0:
            raise ModelUnavailable("EASE: no streams in the training window before the cutoff")
        logger.info("EASE: l2 %.1f on %d users x %d items, %d non-zeros",
                    l2, split.n_users, split.n_items, user_items.nnz)
        gram = (user_items.T @ user_items).toarray()  # (n_items, n_items)
        gram[np.diag_indices_from(gram)] += l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights.astype(np.float32)
        self.user_items = user_items.astype(np.float32).tocsr()
        self.known = np.diff(self.user_items.indptr) > 0

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        user_indices = np.asarray(user_indices, dtype=np.int64)
        scores = np.asarray(self.user_items[user_indices] @ self.weights, dtype=np.float32)
        known = self.known[user_indices]
        if not known.all():
            scores[~known] = self.popularity_scores(int((~known).sum()))
        return scores
