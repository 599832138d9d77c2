"""Configuration of the two-tower model: one dataclass, saved with the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from gfm.errors import ConfigError

POPULARITY_PRIORS = ("none", "training_share", "recent")
WARM_START_EXAMPLES = ("all", "new")
NEW_ITEM_VECTORS = ("unit", "centred")


@dataclass
class TwoTowerConfig:
    # Hidden and output sizes of both towers (2T-HGNN used 512-256-128).
    tower_dims: list[int] = field(default_factory=lambda: [512, 256, 128])
    categorical_dim: int = 16  # embedding size of each categorical feature
    dropout: float = 0.1
    # Item tower inputs beside text and metadata. use_hgnn: the static layer's HGNN vector (the
    # paper's model; False is Table 2's ablation). item_id_dim: a learned id embedding of this
    # size (0 = none; a hybrid tower, 2T-HGNN's Table 2 compares the two, nothing stops both).
    # An item unseen in training has a zero id vector: it is scored from its features alone.
    use_hgnn: bool = True
    item_id_dim: int = 64
    # Training only: each item's id vector is zeroed with this probability (per item and step),
    # so the tower also learns to score an item from its features alone, as it must for an
    # item released after training (DropoutNet, Volkovs et al. 2017). 0 = off. 0.3: chosen on
    # the small profile's validation split over 3 seeds (docs/two_tower_variants.md: mean HR@10
    # level with 0, and more for users without history and for items new to the model).
    item_id_dropout: float = 0.3
    # Training only, negatives "catalog": at each step this share of the catalogue is shown as
    # an item released after training is scored: the unknown id, and for its HGNN vector the
    # mean HGNN vector of its cold_item_knn nearest items of its type by text (itself left
    # out), which is what a new item gets (hgnn.inductive_vectors text_knn). The towers then
    # learn to place an item from what it has on release day. 0 = off.
    cold_item_rate: float = 0.0
    cold_item_knn: int = 20
    # Scoring only (evaluation, the index, serving): an item the model never trained on (no
    # learned id: released after training) gets for its towers' vector the mean of the tower
    # vectors of the new_item_knn trained items of its type closest to it by text, as its HGNN
    # vector is the mean of its text neighbours' (hgnn.inductive_vectors text_knn); its own
    # popularity inputs still feed the prior. 0 = its own features through the item tower,
    # which on the small profile's validation split ranked such items about at random (their
    # text was never seen in training: the tower had learned the trained items' texts, not
    # text in general). 20: on that split, with a tenth of the catalogue left out of training
    # and scored as new, HR@10 of those items 0.133 / 0.232 against 0.091 / 0.181 (audiobook /
    # podcast, mean of seeds 0 and 1; hgnn_knn 0.078 / 0.212, text_knn 0.062 / 0.121); the
    # validation hold-out's real new items 0.231 / 0.500 against 0.115 / 0.416; the mean HR@10
    # level (docs/two_tower_variants_small_new_items.md). Needs item_id_dim > 0 (else no item
    # is told apart as new).
    new_item_knn: int = 20
    # The borrowed vector: "unit" = the neighbours' mean tower vector, scaled to unit length;
    # "centred" = the type's mean tower vector plus the neighbours' mean offset from it,
    # stretched to the type's mean distance from it, then unit length. Tower vectors of one type
    # share much of their direction, and a mean of 20 keeps that shared part but shrinks the
    # item's own: "unit" lands a new item near the type's centre, ranked mid-pack by everyone,
    # while "centred" makes it as distinctive as a trained item, where its neighbours point.
    # "unit" kept: on the small profile's validation split (seeds 0, 1) "centred" reached more
    # new items (the hold-out's real ones 0.288/0.605 against 0.231/0.500, pretend new
    # 0.203/0.254 against 0.141/0.217) but showed them to more users than stream them: mean
    # HR@10 0.439 against 0.443. On medium's it changed nothing (towers still ranked new items
    # about at random there; docs/two_tower_variants_new_item_vector.md). "centred" is for a
    # product that wants more reach for its new releases and accepts that cost.
    new_item_vector: str = "unit"
    # Scoring only: the hgnn_knn path's weight for an item the model never trained on, times the
    # user's g (1: as for a trained item). The path is what ranks new items by taste (their
    # towers' vector is borrowed, their prior "no listeners yet"); above 1 new items reach more
    # of the users whose taste they match, and a user without history (no path) keeps the
    # prior's list. 1: on the validation splits every weight above it lowered the mean HR@10
    # (small: 1.1 -0.007, 1.2 -0.021; medium: 1.2 -0.001, 1.4 -0.019) while raising new items'
    # (docs/two_tower_variants_new_item_weight.md, ..._medium_new_item_weight.md). A constant
    # added to new items' prior instead traded the same and also filled the lists of users
    # without history with new items: dropped. Needs item_id_dim > 0 and hgnn_skip.
    new_item_hgnn_weight: float = 1.0
    # Scoring only, instead of a fixed weight: per item type, the weight above is solved on the
    # catalogue being scored so that new items take `new_item_exposure` x their share of the
    # type's catalogue of the top-10 slots of a fixed sample of users with history (1: as many
    # slots per item as an average item of their type). Label-free: no interaction after the
    # cutoff is read; `gfm evaluate` and `gfm index` solve it from the same users and items
    # (training/two_tower/new_items.py). 0: off. Medium's results run uses 0.2, chosen on its
    # validation split (bench/results.py); on small's, targets up to 0.25 left the weight at 1.
    new_item_exposure: float = 0.0
    # (Also tried: neighbours found by HGNN vector instead of text, the new item's inductive one
    # against the trained items'; its new items' HR@10 fell on small's validation split, seeds
    # 0 and 1: 0.077 / 0.407 and 0.115 / 0.448 against 0.269 / 0.459 and 0.308 / 0.570, and on
    # medium's the towers ranked them lower still: median best rank 2686 against 2120.)
    # User tower: besides the per-type mean HGNN vectors, the per-type weighted mean of the
    # learned id vectors of the history items (user_history at the example's day, latest
    # first); the i-th most recent item weighs history_decay**i (1.0 = a plain mean).
    history_decay: float = 1.0
    # With id vectors: linear paths from an item's id vector, and from the user's pooled history
    # ids, straight to the tower outputs beside the MLPs, so the score holds a bilinear
    # history-item x item term (item-to-item, as FISM, Kabbur et al. 2013) that the MLPs need
    # not learn to pass through.
    id_skip: bool = False
    # With HGNN inputs (use_hgnn; without them it does nothing): the score gains g(user) *
    # cosine(the mean HGNN vector of the user's history, the item's HGNN vector), g >= 0
    # learned from the user's features: hgnn_knn's score as a path beside the towers. It
    # needs no id vector, so it carries to an item released after training (its HGNN vector
    # comes from its text alone). Served as more dimensions of the item and user vectors (an
    # inner product, as the popularity prior).
    # On: on the small profile's validation split, it kept the mean HR@10 level and made new
    # items reachable on every seed (without it, new podcasts went from 0.31 to 0.01 with the
    # seed; docs/two_tower_variants.md).
    hgnn_skip: bool = True
    # Training only: each example's user is shown without history (no HGNN means, counts or
    # history ids) with this probability, so the towers learn what a user who just signed up
    # streams (demographics, what is popular). Without it, under 1% of examples are cold. 0 = off.
    # 0.3 with history_set_examples (whose rows are all users with a history, so fewer cold
    # examples): on medium's validation split users without history went from -0.051
    # [-0.070, -0.033] against popularity (0.1) to -0.006 [-0.017, +0.006], the mean HR@10
    # still +0.015 over the former defaults (docs/two_tower_variants_medium_history_set.md);
    # on small's, level with 0.1 over 2 seeds (docs/two_tower_variants_small_history_set.md).
    history_dropout: float = 0.3
    # Of the examples shown without history, this share also without demographics (unknown
    # country and age bucket), as a user who signs up after the cutoff reads at the cutoff
    # (and as /recommend reads an id the feature store has never seen). 0 = off: the "unknown"
    # codes are then never trained, and what such users get depends on the seed.
    # 0.5: on the small profile's validation split, every user scored with history hidden and
    # demographics unknown ("history hidden" in docs/two_tower_variants.md) got 0.29/0.37 and
    # 0.33/0.40 (seeds 0, 1) against 0.26/0.21 without it and 0.33/0.36 from popularity; the
    # warm users' mean moved within the run-to-run spread (0.368, 0.374 against 0.382, 0.373).
    cold_unknown_share: float = 0.5
    # A user the model knows nothing of (no history, unknown country and age bucket) has no
    # taste vector, as an item the model never saw has no id vector: the towers' and the hgnn
    # path's terms are zero and the user is ranked by the popularity prior alone. The towers'
    # term for such a user can only learn the training window's popularity through item ids
    # and text, which is stale after the cutoff; the "recent" prior reads it lagged as served.
    # Without a popularity prior it does nothing (nothing would be left to rank by).
    # False = the towers score the unknown user as any other.
    # On: on the small profile's validation split (seeds 0, 1;
    # docs/two_tower_variants_new_signups.md) users without history went from -0.026 and
    # -0.046 against popularity to -0.006 and -0.009 (intervals across 0), the mean HR@10
    # 0.425 / 0.433 against 0.427 / 0.435, pretend-new items 0.155/0.257 and 0.139/0.252
    # against 0.108/0.217 and 0.134/0.236.
    unknown_user_prior_only: bool = True
    # Softmax temperature on the cosine scores (logit = cosine / temperature + prior). 0.3: on
    # the small profile's validation split (seed 7, two_tower.seed 0 and 1, 7 epochs;
    # docs/two_tower_variants_small_temperature.md) mean HR@10 0.452 against 0.439 at 0.1
    # (+0.016 and +0.018, intervals above 0), new items 0.250/0.596 against 0.135/0.561; 0.2
    # 0.448, 0.5 0.433. Level on medium's (docs/two_tower_variants_medium_temperature.md:
    # +0.001 [-0.002, +0.004]). MovieLens' runs set their own (bench/results.py).
    temperature: float = 0.3
    # A learned per-user weight s(user) >= 0 on the towers' cosine (softplus, 1 at the start):
    # score = s(user) * cosine [+ hgnn path] + prior. A user the model knows little about (no
    # history, unknown demographics) can then rank by the popularity prior alone, which is
    # estimated from every stream, instead of through a cosine learned for known users.
    # Off: on the small profile's validation split (seeds 0, 1;
    # docs/two_tower_variants_user_scale.md) it gave mean HR@10 0.376 vs 0.375, history hidden
    # 0.340/0.380 vs 0.332/0.373 (popularity 0.328/0.356), but pretend new 0.122/0.220 vs
    # 0.146/0.244: users without history gain less than new items lose.
    user_scale: bool = False
    # negatives "in_batch" only (Yi et al. 2019): subtract log(sampling probability) of each
    # in-batch item, so popular items are not over-penalised as negatives.
    logq_correction: bool = True
    # A popularity prior inside the model: a user's score of an item gains
    # w(user) * temperature * p(item), w >= 0 learned from the user's features (a user without
    # history can lean on popularity, a long history on the towers). p(item):
    #   "none":           no prior;
    #   "training_share": log of the item's share of training examples (add-one smoothed; an
    #                     item new since training gets the smallest); static;
    #   "recent":         a small learned function of the item's recent popularity at the
    #                     example's day (feature view item_popularity_daily: listener-days over
    #                     7 and 28 days, days since release); at serving, as of the cutoff.
    # Served as one more dimension of the item and user vectors (an inner product); the index
    # turns that into a cosine search (serving.index, the MIPS-to-cosine transform).
    popularity_prior: str = "recent"
    # Training only, "recent" prior: each example reads its items' popularity snapshot of a day
    # drawn uniformly in [its day - popularity_lag_days, its day] instead of its own day: as a
    # list computed at a cutoff is used for the days after it (and `gfm evaluate` scores the
    # hold-out's days with the cutoff's snapshot). An item released in between reads as "no
    # listeners yet" while its example already streams it, as a new item does at serving.
    # 0 = the example's own day. 13 (the default hold-out's days after its first): on the small
    # profile's validation split, users without history went from -0.033 and -0.010 against
    # popularity (seeds 0, 1) to -0.004 and +0.004, the mean HR@10 0.375 on both seeds to
    # 0.380 and 0.369 (docs/two_tower_variants_cold_users.md).
    popularity_lag_days: int = 13
    # An item that is also another example's positive in the batch is not a negative.
    remove_accidental_hits: bool = True
    # Negatives: "in_batch" (the other examples' items, with the log-Q correction) or "catalog"
    # (a softmax over every trained item each step: exact, no sampling bias; the item tower runs
    # over the whole trained catalogue per step, affordable up to some 10^4 items).
    # "catalog" with the mask won on the small profile's validation split
    # (docs/two_tower_variants.md).
    negatives: str = "catalog"
    # With "catalog": the user's own history items (of the example's day) are not negatives.
    # What is served and evaluated leaves them out, so pushing them down only fights the
    # re-stream examples that pull them up.
    mask_history_negatives: bool = True
    # With "catalog": True = only items of the positive's type are its negatives. Recommendations
    # are ranked (and evaluated) within one item type, so the softmax need not spend itself on
    # which type a user streams next; False = every item competes (calibrates across types).
    same_type_negatives: bool = True
    batch_size: int = 512
    lr: float = 1e-3
    # The best epoch of the mean validation curve over 2 seeds on the small profile's
    # validation split, with history_set_examples and history_dropout 0.3
    # (docs/two_tower_variants_small_history_set.md: 0.443 at the 7th).
    epochs: int = 7
    # Epochs of a warm-started training (`gfm train two-tower --warm-start`, what `gfm refresh`
    # runs): it begins from the served model's weights, so it needs fewer.
    warm_start_epochs: int = 1
    # Which examples a warm start trains on: "new" = only those dated at or after the served
    # model's cutoff, the days it has not seen; "all" = every example of the window, as from
    # scratch (each daily refresh adds warm_start_epochs more passes over the same days).
    # Features are read fresh either way. "new", chosen on the small profile's validation
    # timeline (bench/bench_refresh.py, 6 daily refreshes each): level with a model trained
    # from scratch after 6 days, and +0.017 [+0.003, +0.033] HR@10 over "all", which drifts
    # further below with each day; the training stage 9 s instead of 21 s.
    warm_start_examples: str = "new"
    # Leave out the examples whose item is already in the user's history of that day (about
    # 70% on the synthetic data: episodes of a show the user follows). What is served, and the
    # primary evaluation, leave history items out; but on the small profile's validation split
    # training on discovery examples alone lost (0.206 vs 0.305 mean HR@10): off.
    exclude_history_examples: bool = False
    # Training examples: streams in [graph_as_of, cutoff) on top-level items, at most this many
    # (the most recent first is NOT used: a uniform sample keeps every day); 0 = all.
    max_examples: int = 0
    # Also one example per item each user streamed in the history window before the cutoff,
    # stamped at the cutoff, with the user's features there less that item (leave one out, as
    # ALS and EASE learn from the whole window): every item is predicted from all the others,
    # not only from what came before it. For data where the order inside a window says little
    # (MovieLens' rating sessions). No later instant is read: the hold-out stays unseen.
    # On: the step that put unified_2t above EASE on both synthetic validation splits (small,
    # 2 seeds: +0.022 and +0.018 mean HR@10 over the former defaults, +0.027 and +0.022 over
    # EASE; medium +0.015 / +0.014; docs/two_tower_variants_*_history_set.md). A warm start
    # on "new" examples leaves them out: the served model learned the window already.
    history_set_examples: bool = True
    # Each batch holds examples of one kind only: those whose item carries an HGNN vector
    # (after graph_as_of) or those before it (early_label_days, scored against the catalogue
    # without HGNN vectors). A mixed batch needs the whole catalogue through the item tower
    # twice per step; a single-kind batch, once. The rows are shuffled within each kind, then
    # the batches are shuffled. On the validation splits: small (7 epochs, seeds 0 and 1)
    # training 106 s -> 71 s and 101 s -> 70 s, mean HR@10 0.4393 -> 0.4401 and 0.4442 ->
    # 0.4422; medium (2 epochs, with per-epoch scoring) 880 s -> 543 s, 0.3486 -> 0.3479:
    # level, so on by default.
    single_kind_batches: bool = True
    val_fraction: float = 0.05  # of users, held out for the per-epoch validation recall
    time_budget_s: float = 900.0
    seed: int = 0
    threads: int = 0
    # auto | cpu | cuda: auto = CUDA when torch sees a GPU, else the CPU (gfm/device.py).
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("item_id_dropout", "history_dropout", "cold_unknown_share",
                     "cold_item_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"two_tower.{name} must be in [0, 1), got {getattr(self, name)}")
        if isinstance(self.popularity_prior, bool):  # configs before the prior had kinds
            self.popularity_prior = "training_share" if self.popularity_prior else "none"
        if self.popularity_prior not in POPULARITY_PRIORS:
            raise ConfigError(f"two_tower.popularity_prior must be one of "
                              f"{', '.join(POPULARITY_PRIORS)}, got {self.popularity_prior!r}")
        if self.negatives not in ("in_batch", "catalog"):
            raise ConfigError(f"two_tower.negatives must be in_batch or catalog, got "
                              f"{self.negatives!r}")
        if self.cold_item_rate > 0 and self.negatives != "catalog":
            raise ConfigError("two_tower.cold_item_rate works on the catalogue softmax: set "
                              "negatives: catalog, or cold_item_rate: 0")
        if self.warm_start_examples not in WARM_START_EXAMPLES:
            raise ConfigError(f"two_tower.warm_start_examples must be one of "
                              f"{', '.join(WARM_START_EXAMPLES)}, got {self.warm_start_examples!r}")
        for name in ("epochs", "warm_start_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"two_tower.{name} must be a whole number >= 1, got "
                                  f"{getattr(self, name)!r}")
        if not isinstance(self.new_item_knn, int) or self.new_item_knn < 0:
            raise ConfigError("two_tower.new_item_knn must be a whole number >= 0 (0 = off), "
                              f"got {self.new_item_knn!r}")
        if self.new_item_vector not in NEW_ITEM_VECTORS:
            raise ConfigError(f"two_tower.new_item_vector must be one of "
                              f"{', '.join(NEW_ITEM_VECTORS)}, got {self.new_item_vector!r}")
        if (not isinstance(self.new_item_hgnn_weight, (int, float))
                or isinstance(self.new_item_hgnn_weight, bool) or self.new_item_hgnn_weight < 0):
            raise ConfigError(f"two_tower.new_item_hgnn_weight must be a number >= 0 (1 = as a "
                              f"trained item), got {self.new_item_hgnn_weight!r}")
        if self.new_item_hgnn_weight != 1 and (self.item_id_dim <= 0 or not self.hgnn_skip
                                               or not self.use_hgnn):
            raise ConfigError("two_tower.new_item_hgnn_weight needs learned item ids "
                              "(item_id_dim > 0) and the hgnn_knn path (hgnn_skip, use_hgnn); "
                              "or set it to 1")
        if (not isinstance(self.new_item_exposure, (int, float))
                or isinstance(self.new_item_exposure, bool) or self.new_item_exposure < 0):
            raise ConfigError(f"two_tower.new_item_exposure must be a number >= 0 (0 = off), got "
                              f"{self.new_item_exposure!r}")
        if self.new_item_exposure and self.new_item_hgnn_weight != 1:
            raise ConfigError("two_tower.new_item_exposure solves the new items' weight itself: "
                              "set new_item_hgnn_weight to 1, or new_item_exposure to 0")
        if self.new_item_exposure and (self.item_id_dim <= 0 or not self.hgnn_skip
                                       or not self.use_hgnn):
            raise ConfigError("two_tower.new_item_exposure needs learned item ids "
                              "(item_id_dim > 0) and the hgnn_knn path (hgnn_skip, use_hgnn); "
                              "or set it to 0")
        if not isinstance(self.popularity_lag_days, int) or self.popularity_lag_days < 0:
            raise ConfigError("two_tower.popularity_lag_days must be a whole number of days "
                              f">= 0, got {self.popularity_lag_days!r}")
