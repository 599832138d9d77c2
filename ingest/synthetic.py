"""A synthetic audio-streaming platform: podcasts (shows with episodes) and audiobooks.

The world, in short (docs/architecture.md, "Raw data", says more):
- 20 topics, each split into `niches_per_topic` hidden taste communities. Text (titles,
  descriptions, genre) reveals an item's topic, noisily, but never its niche: only who consumed
  what together reveals niches. That is the part of the signal a co-interaction graph can add
  to text.
- Users belong mostly to one of `n_personas` shared personas: a persona likes a few topics
  (sparse Dirichlet) and one niche in each, so tastes that cross topics are shared by many
  users (collaborative signal that text cannot see); a user adds some tastes of their own.
  Users have a type propensity (podcast-heavy, audiobook-heavy or mixed) and the same niches
  across types, so podcasts and audiobooks are co-consumed on shared tastes (the paper's point).
- Item popularity is power-law; users return to a few core items (habits) and explore the rest.
- Some items are released during the period (cold start), streamed at a steady rate after
  their release with a release buzz in their first days; some users sign up during it.
- Weak signals: follows (no playback) and previews (under 30 s).

Deterministic by seed; users are generated in chunks written as they go, so memory stays
bounded for the large profile.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ingest.contract import arrow_schema
from ingest.vocabulary import (
    AGE_BUCKETS,
    AUDIOBOOK_TITLE_PATTERNS,
    COUNTRIES,
    GENERIC_WORDS,
    LANGUAGES,
    PODCAST_TITLE_SUFFIXES,
    TOPICS,
)

log = logging.getLogger(__name__)

DAY_S = 86_400
PERIOD_START = dt.datetime(2025, 3, 1)


@dataclass(frozen=True)
class Profile:
    n_users: int
    n_shows: int
    mean_episodes_per_show: float
    n_audiobooks: int
    mean_events_per_user: float
    days: int = 140
    niches_per_topic: int = 4
    n_personas: int = 24
    users_per_chunk: int = 20_000
    # Users who sign up in the period's last RECENT_SIGNUP_DAYS (42) days (a growth campaign),
    # in three equal parts with the default cutoff (the last event's day minus 14 days) and the
    # validation cutoff (14 days before it, `gfm tune`): a third joins after the cutoff (users
    # without history in the hold-out, enough of them to carry an interval), a third in the
    # validation hold-out (its users without history, and new users in the training window), a
    # third before the validation cutoff (new users in the validation's training window). So
    # both cutoffs see the same mix of new users before and after them. Each streams at
    # RECENT_SIGNUP_ACTIVITY times the usual daily rate from sign-up on: a steady rate, so a
    # user who joins late does not stream faster than one who joined earlier.
    # Generated after the other users, from their own seeds: the other users and their events
    # do not change with this number.
    recent_signups: int = 0


PROFILES = {
    # ~200k interactions, ~7k items: the whole pipeline in minutes on 2 cores.
    "small": Profile(n_users=3_000, n_shows=600, mean_episodes_per_show=6, n_audiobooks=900,
                     mean_events_per_user=48, recent_signups=1_800),
    # ~1.5M interactions, ~35k items.
    "medium": Profile(n_users=25_000, n_shows=4_000, mean_episodes_per_show=6,
                      n_audiobooks=5_000, mean_events_per_user=60, recent_signups=1_800),
    # ~11M interactions over ~95k items.
    "large": Profile(n_users=200_000, n_shows=12_000, mean_episodes_per_show=5,
                     n_audiobooks=22_000, mean_events_per_user=55, recent_signups=8_000),
    # A few hundred users with strong shared tastes: for tests only.
    "tiny": Profile(n_users=500, n_shows=150, mean_episodes_per_show=2, n_audiobooks=200,
                    mean_events_per_user=50, niches_per_topic=2, n_personas=5),
}

TOPIC_KEYS = list(TOPICS)
N_TOPICS = len(TOPIC_KEYS)
NEW_ITEM_SHARE = 0.12  # released during the period: cold-start items
LATE_SIGNUP_SHARE = 0.12  # users who join during the period
# Profile.recent_signups join in [period end - RECENT_SIGNUP_DAYS, period end - 1 day): the
# default hold-out (the last 14 days), the validation hold-out before it (14 days more) and the
# 14 days before the validation cutoff.
RECENT_SIGNUP_DAYS = 42
# A recent signup's daily event rate against a regular user's (whose lognormal event count
# spans the whole period). New users stream more than the average user (4 x 48 events / 140
# days is about 1.4 a day on small); at 4, about 60% of small's cohort of the hold-out streams
# an audiobook there, so 1,800 signups give over 300 users without history per type.
RECENT_SIGNUP_ACTIVITY = 4.0
# An item released during the period: the share of its draws (at its steady rate over a
# user's active days) that comes on top as a release buzz, and the buzz's mean delay after
# the release: at 0.15 and 7 days its first week has about 3 x the streams of a later week.
RELEASE_BUZZ_SHARE = 0.15
RELEASE_BUZZ_DAYS = 7.0
CORE_EVENT_SHARE = 0.5  # events on a user's habitual items
NICHE_LOYALTY = 0.8  # chance an exploration stays in the user's niche of the topic
PERSONA_SHARE = 0.75  # weight of the shared persona in a user's topic taste
PERSONA_NICHE_SHARE = 0.85  # chance a user's niche in a topic is their persona's
TEXT_TOPIC_SHARE = 0.55  # share of description words from the item's own topic


@dataclass
class Catalog:
    """Top-level items (shows and audiobooks) as arrays, plus episodes."""

    item_id: np.ndarray  # str
    is_audiobook: np.ndarray  # bool
    topic: np.ndarray  # int
    niche: np.ndarray  # int, global niche index = topic * niches_per_topic + local niche
    weight: np.ndarray  # popularity weight (power law)
    created_s: np.ndarray  # seconds since PERIOD_START (negative = before the period)
    # Episodes, sorted by (show, created_s).
    episode_id: np.ndarray
    episode_show: np.ndarray  # index into the top-level arrays
    episode_created_s: np.ndarray
    episode_offsets: np.ndarray  # first episode of show s at episode_offsets[s]


def _words(rng: np.random.Generator, topic: int, n: int) -> list[str]:
    own = TOPICS[TOPIC_KEYS[topic]][1]
    draw = rng.random(n)
    words = []
    for u in draw:
        if u < TEXT_TOPIC_SHARE:
            words.append(own[rng.integers(len(own))])
        elif u < TEXT_TOPIC_SHARE + 0.15:
            other = TOPICS[TOPIC_KEYS[rng.integers(N_TOPICS)]][1]
            words.append(other[rng.integers(len(other))])
        else:
            words.append(GENERIC_WORDS[rng.integers(len(GENERIC_WORDS))])
    return words


def _build_catalog(profile: Profile, rng: np.random.Generator, period_s: int) -> tuple[Catalog, pa.Table]:
    n_top = profile.n_shows + profile.n_audiobooks
    is_audiobook = np.zeros(n_top, dtype=bool)
    is_audiobook[profile.n_shows:] = True
    # Round-robin over (topic, niche) first so every pool has items, then at random.
    n_niches = N_TOPICS * profile.niches_per_topic
    niche = np.empty(n_top, dtype=np.int64)
    for mask in (~is_audiobook, is_audiobook):
        idx = np.flatnonzero(mask)
        assigned = np.arange(len(idx)) % n_niches
        assigned[n_niches:] = rng.integers(0, n_niches, max(0, len(idx) - n_niches))
        niche[idx] = assigned
    topic = niche // profile.niches_per_topic
    weight = rng.pareto(0.9, n_top) + 1.0  # power-law popularity
    is_new = rng.random(n_top) < NEW_ITEM_SHARE
    created_s = np.where(
        is_new,
        rng.integers(20 * DAY_S, period_s - 5 * DAY_S, n_top),
        -rng.integers(DAY_S, 3 * 365 * DAY_S, n_top),
    )
    width = len(str(n_top))
    item_id = np.array(
        [f"{'ab' if ab else 'pc'}{i:0{width}d}" for i, ab in enumerate(is_audiobook)], dtype=object
    )

    # Episodes: released between their show's creation and the end of the period.
    shows = np.flatnonzero(~is_audiobook)
    n_eps = 1 + rng.geometric(1.0 / profile.mean_episodes_per_show, len(shows)).clip(max=40)
    episode_show = np.repeat(shows, n_eps)
    starts = created_s[episode_show]
    episode_created_s = starts + (rng.random(len(episode_show)) * (period_s - starts)).astype(np.int64)
    order = np.lexsort((episode_created_s, episode_show))
    episode_show, episode_created_s = episode_show[order], episode_created_s[order]
    # Every show's first episode comes out with the show.
    first = np.r_[True, episode_show[1:] != episode_show[:-1]]
    episode_created_s[first] = created_s[episode_show[first]]
    episode_offsets = np.zeros(n_top + 1, dtype=np.int64)
    np.add.at(episode_offsets, episode_show + 1, 1)
    episode_offsets = np.cumsum(episode_offsets)
    rank = np.arange(len(episode_show)) - episode_offsets[episode_show]
    episode_id = np.array([f"{item_id[s]}e{r:03d}" for s, r in zip(episode_show, rank)], dtype=object)

    catalog = Catalog(item_id, is_audiobook, topic, niche, weight, created_s, episode_id,
                      episode_show, episode_created_s, episode_offsets)
    return catalog, _catalog_table(catalog, rng)


def _catalog_table(c: Catalog, rng: np.random.Generator) -> pa.Table:
    rows: dict[str, list] = {k: [] for k in arrow_schema("items").names}

    def add(item_id, item_type, parent_id, title, description, language, genre, created_s):
        rows["item_id"].append(item_id)
        rows["item_type"].append(item_type)
        rows["parent_id"].append(parent_id)
        rows["title"].append(title)
        rows["description"].append(description)
        rows["language"].append(language)
        rows["genre"].append(genre)
        rows["created_at"].append(PERIOD_START + dt.timedelta(seconds=int(created_s)))

    languages = {}
    for i in range(len(c.item_id)):
        topic = int(c.topic[i])
        # Genre tags are editorial and sometimes off-topic.
        genre_topic = topic if rng.random() < 0.85 else int(rng.integers(N_TOPICS))
        genre = TOPICS[TOPIC_KEYS[genre_topic]][0]
        language = LANGUAGES[rng.integers(len(LANGUAGES))]
        languages[i] = language
        a, b = (w.capitalize() for w in _words(rng, topic, 2))
        description = " ".join(_words(rng, topic, int(rng.integers(12, 24)))).capitalize() + "."
        if c.is_audiobook[i]:
            pattern = AUDIOBOOK_TITLE_PATTERNS[rng.integers(len(AUDIOBOOK_TITLE_PATTERNS))]
            add(c.item_id[i], "audiobook", None, pattern.format(a=a, b=b), description, language,
                genre, c.created_s[i])
        else:
            suffix = PODCAST_TITLE_SUFFIXES[rng.integers(len(PODCAST_TITLE_SUFFIXES))]
            add(c.item_id[i], "podcast", None, f"The {a} {b} {suffix}", description, language,
                genre, c.created_s[i])
    for j, show in enumerate(c.episode_show):
        topic = int(c.topic[show])
        words = _words(rng, topic, int(rng.integers(8, 16)))
        rank = j - c.episode_offsets[show] + 1
        title = f"Ep. {rank}: {words[0].capitalize()} and {words[1]}"
        add(c.episode_id[j], "episode", c.item_id[show], title,
            " ".join(words[2:]).capitalize() + ".", languages[int(show)],
            TOPICS[TOPIC_KEYS[topic]][0], c.episode_created_s[j])
    return pa.Table.from_pydict(rows, schema=arrow_schema("items"))


class _PoolSampler:
    """Draw items from pools (is_audiobook, niche) in proportion to popularity, vectorised.

    Items are sorted by pool; within a pool the cumulative weights run over (0, 1], and pool p
    owns the key range (p, p + 1]: `searchsorted(keys, pool + u)` is a weighted draw.
    """

    def __init__(self, catalog: Catalog, n_niches: int):
        pool = catalog.is_audiobook.astype(np.int64) * n_niches + catalog.niche
        order = np.argsort(pool, kind="stable")
        sorted_pool = pool[order]
        _, starts, sizes = np.unique(sorted_pool, return_index=True, return_counts=True)
        cum = np.cumsum(catalog.weight[order])
        before_pool = np.repeat(np.r_[0.0, cum][starts], sizes)  # weight of earlier pools
        pool_total = np.repeat(cum[starts + sizes - 1], sizes) - before_pool
        self.keys = sorted_pool + (cum - before_pool) / pool_total
        self.keys[starts + sizes - 1] = sorted_pool[starts + sizes - 1] + 1.0  # exact, no rounding
        self.items = order
        self.n_niches = n_niches

    def draw(self, rng: np.random.Generator, is_audiobook: np.ndarray, niche: np.ndarray) -> np.ndarray:
        pool = is_audiobook.astype(np.int64) * self.n_niches + niche
        idx = np.searchsorted(self.keys, pool + rng.random(len(pool)) * (1 - 1e-12) + 1e-12)
        return self.items[np.minimum(idx, len(self.items) - 1)]


def _categorical_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per entry of `rows` from the categorical distribution probs[row]."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(rows)) * cum[rows, -1]
    return (cum[rows] < u[:, None]).sum(axis=1)


@dataclass
class Personas:
    taste: np.ndarray  # (n_personas, n_topics) topic distribution
    niche: np.ndarray  # (n_personas, n_topics) the persona's niche in each topic


def _build_personas(profile: Profile, rng: np.random.Generator) -> Personas:
    # Some topics are mainstream, others niche (Zipf over topics).
    topic_popularity = 1.0 / np.arange(1, N_TOPICS + 1) ** 0.8
    alpha = 2.0 * topic_popularity / topic_popularity.sum()
    return Personas(rng.dirichlet(alpha, profile.n_personas),
                    rng.integers(0, profile.niches_per_topic, (profile.n_personas, N_TOPICS)))


def _generate_chunk(
    profile: Profile, catalog: Catalog, sampler: _PoolSampler, personas: Personas,
    rng: np.random.Generator,
    first_user: int, n_users: int, period_s: int, id_width: int,
    signup_window_s: tuple[int, int] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """One chunk of users and their events. signup_window_s: every user of the chunk signs up
    uniformly in [start, end) seconds of the period (the recent-signup cohort); otherwise
    LATE_SIGNUP_SHARE of them during the period and the rest before it."""
    k = profile.niches_per_topic
    user_ids = np.array([f"u{first_user + i:0{id_width}d}" for i in range(n_users)], dtype=object)
    # Tastes: a few topics, one niche in each, a type propensity, an activity level.
    persona = rng.integers(0, profile.n_personas, n_users)
    own_taste = rng.dirichlet(np.full(N_TOPICS, 0.1), n_users)
    taste = PERSONA_SHARE * personas.taste[persona] + (1 - PERSONA_SHARE) * own_taste
    home_niche = np.where(rng.random((n_users, N_TOPICS)) < PERSONA_NICHE_SHARE,
                          personas.niche[persona], rng.integers(0, k, (n_users, N_TOPICS)))
    segment = rng.choice(3, n_users, p=[0.5, 0.2, 0.3])  # podcast-heavy, audiobook-heavy, mixed
    p_audiobook = np.array([0.08, 0.85, 0.45])[segment]
    n_events = np.minimum(
        rng.lognormal(np.log(profile.mean_events_per_user) - 0.5, 1.0, n_users).astype(np.int64) + 1,
        3_000,
    )
    late = rng.random(n_users) < LATE_SIGNUP_SHARE
    signup_s = np.where(late, rng.integers(0, period_s - 7 * DAY_S, n_users),
                        -rng.integers(DAY_S, 4 * 365 * DAY_S, n_users))
    if signup_window_s is not None:  # drawn after the others: other chunks' draws unchanged
        signup_s = rng.integers(signup_window_s[0], signup_window_s[1], n_users)
        # A steady daily rate from sign-up to the period's end (the regular users' lognormal
        # count is over the whole period): a late signup streams no faster than an early one.
        active_share = (period_s - signup_s) / period_s
        n_events = np.maximum(
            np.round(n_events * RECENT_SIGNUP_ACTIVITY * active_share).astype(np.int64), 1)
    users = pa.table(
        {
            "user_id": pa.array(user_ids, pa.string()),
            "country": pa.array([COUNTRIES[i] for i in rng.integers(len(COUNTRIES), size=n_users)]),
            "age_bucket": pa.array([AGE_BUCKETS[i] for i in rng.integers(len(AGE_BUCKETS), size=n_users)]),
            "signup_at": pa.array([PERIOD_START + dt.timedelta(seconds=int(s)) for s in signup_s],
                                  pa.timestamp("us")),
        }
    )

    def explore(rows: np.ndarray) -> np.ndarray:
        topic = _categorical_rows(rng, taste, rows)
        loyal = rng.random(len(rows)) < NICHE_LOYALTY
        local = np.where(loyal, home_niche[rows, topic], rng.integers(0, k, len(rows)))
        ab = rng.random(len(rows)) < p_audiobook[rows]
        return sampler.draw(rng, ab, topic * k + local)

    # Habits: a few core items per user, returned to again and again.
    n_core = 2 + rng.poisson(3, n_users)
    core_rows = np.repeat(np.arange(n_users), n_core)
    core_items = explore(core_rows)
    core_offsets = np.r_[0, np.cumsum(n_core)]

    ev_user = np.repeat(np.arange(n_users), n_events)
    is_core = rng.random(len(ev_user)) < CORE_EVENT_SHARE
    pick = (rng.random(len(ev_user)) ** 1.5 * n_core[ev_user]).astype(np.int64)  # skew to first
    ev_item = np.where(is_core, core_items[core_offsets[ev_user] + pick], -1)
    ev_item[~is_core] = explore(ev_user[~is_core])

    # Event types: habits are streamed or followed; explorations are often previews.
    u = rng.random(len(ev_user))
    event_type = np.where(is_core, np.where(u < 0.92, 0, 1), np.where(u < 0.68, 0, np.where(u < 0.93, 2, 1)))
    # 0 stream, 1 follow, 2 preview

    # Time: uniform over the user's active days. An item released during the period is
    # streamed at its steady rate from its release on, plus a release buzz: a draw that lands
    # before the release becomes a buzz event with the chance that gives every release the
    # same buzz (RELEASE_BUZZ_SHARE of its draws, as a share of the user's active days)
    # whatever its release day, days after it drawn from an exponential of mean
    # RELEASE_BUZZ_DAYS; the other early draws, and buzz events after the period, never
    # happen. (Moving every early draw into [release, period end] instead crammed an item's
    # whole audience into its days left: releases in the last 14 days had 8-23 x the
    # first-week streams of releases 4+ weeks before the end, a pattern no model can learn.)
    active_from = np.maximum(signup_s[ev_user], 0)
    ev_s = active_from + (rng.random(len(ev_user)) * (period_s - active_from)).astype(np.int64)
    created = catalog.created_s[ev_item]
    too_early = ev_s < created
    early_share = ((created[too_early] - active_from[too_early])
                   / (period_s - active_from[too_early]))  # (n_early,) chance of an early draw
    buzz = rng.random(too_early.sum()) < RELEASE_BUZZ_SHARE / early_share
    ev_s[too_early] = created[too_early] + (
        rng.exponential(RELEASE_BUZZ_DAYS * DAY_S, too_early.sum())).astype(np.int64)
    happens = np.ones(len(ev_user), dtype=bool)
    happens[too_early] = buzz & (ev_s[too_early] < period_s)
    ev_user, ev_item, event_type, ev_s = (ev_user[happens], ev_item[happens],
                                          event_type[happens], ev_s[happens])

    # Podcast streams and previews land on an episode already released: often the latest.
    on_episode = ~catalog.is_audiobook[ev_item] & (event_type != 1)
    shows, when = ev_item[on_episode], ev_s[on_episode]
    first = catalog.episode_offsets[shows]
    last = catalog.episode_offsets[shows + 1]
    # Episodes are sorted by (show, created): a combined key makes one searchsorted do all shows.
    ep_key = catalog.episode_show.astype(np.float64) * 1e10 + catalog.episode_created_s
    released = np.searchsorted(ep_key, shows.astype(np.float64) * 1e10 + when, side="right") - first
    released = np.clip(released, 1, last - first)
    latest = rng.random(len(shows)) < 0.5
    episode = first + np.where(latest, released - 1, (rng.random(len(shows)) * released).astype(np.int64))
    when = np.maximum(when, catalog.episode_created_s[episode])
    ev_s[on_episode] = when

    item_ids = catalog.item_id[ev_item].copy()
    item_ids[on_episode] = catalog.episode_id[episode]
    played_ms = np.where(
        event_type == 0,
        (rng.lognormal(np.log(20 * 60_000), 0.8, len(ev_user))).astype(np.int64),
        np.where(event_type == 2, rng.integers(2_000, 30_000, len(ev_user)), 0),
    )
    ev_s = np.minimum(ev_s, period_s - 1)
    order = np.lexsort((ev_s, ev_user))
    type_names = np.array(["stream", "follow", "preview"], dtype=object)
    interactions = pa.table(
        {
            "user_id": pa.array(user_ids[ev_user[order]], pa.string()),
            "item_id": pa.array(item_ids[order], pa.string()),
            "event_ts": pa.array(
                np.datetime64(PERIOD_START, "s") + ev_s[order].astype("timedelta64[s]"),
                pa.timestamp("us"),
            ),
            "event_type": pa.array(type_names[event_type[order]], pa.string()),
            "played_ms": pa.array(np.where(event_type[order] == 1, None, played_ms[order]),
                                  pa.int64()),
        }
    )
    return users, interactions


def generate(profile_name: str, seed: int, out_dir: Path) -> dict[str, int]:
    """Write items/users/interactions parquet files for a profile; return row counts."""
    profile = PROFILES[profile_name]
    period_s = profile.days * DAY_S
    root = np.random.SeedSequence([seed, 20240513])
    n_chunks = -(-profile.n_users // profile.users_per_chunk)
    n_recent_chunks = -(-profile.recent_signups // profile.users_per_chunk)
    # Spawned children depend only on their position: the recent cohort's seeds come after the
    # others', which stay what they were without the cohort.
    catalog_seed, *chunk_seeds = root.spawn(1 + n_chunks + n_recent_chunks)
    recent_window = ((profile.days - RECENT_SIGNUP_DAYS) * DAY_S, (profile.days - 1) * DAY_S)
    catalog_rng = np.random.default_rng(catalog_seed)
    catalog, items = _build_catalog(profile, catalog_rng, period_s)
    personas = _build_personas(profile, catalog_rng)
    pq.write_table(items, out_dir / "items.parquet")
    sampler = _PoolSampler(catalog, N_TOPICS * profile.niches_per_topic)
    id_width = len(str(profile.n_users + profile.recent_signups))
    counts = {"items": items.num_rows, "users": 0, "interactions": 0}
    # (first user, users, signup window) per chunk: the regular users, then the recent cohort.
    chunks = [(c * profile.users_per_chunk,
               min(profile.users_per_chunk, profile.n_users - c * profile.users_per_chunk), None)
              for c in range(n_chunks)]
    chunks += [(profile.n_users + c * profile.users_per_chunk,
                min(profile.users_per_chunk, profile.recent_signups - c * profile.users_per_chunk),
                recent_window) for c in range(n_recent_chunks)]
    with (
        pq.ParquetWriter(out_dir / "users.parquet", arrow_schema("users")) as users_out,
        pq.ParquetWriter(out_dir / "interactions.parquet", arrow_schema("interactions")) as events_out,
        tqdm(total=profile.n_users + profile.recent_signups, desc="generate users", unit="user",
             disable=None) as bar,
    ):
        for (first_user, n, window), chunk_seed in zip(chunks, chunk_seeds):
            users, interactions = _generate_chunk(
                profile, catalog, sampler, personas, np.random.default_rng(chunk_seed), first_user, n,
                period_s, id_width, window,
            )
            users_out.write_table(users.cast(arrow_schema("users")))
            events_out.write_table(interactions.cast(arrow_schema("interactions")))
            counts["users"] += users.num_rows
            counts["interactions"] += interactions.num_rows
            bar.update(n)
    log.info("generated %s", counts)
    return counts


def profile_manifest(profile_name: str, seed: int) -> dict:
    return {"source": f"gfm generate --profile {profile_name} --seed {seed}",
            "profile": profile_name, "seed": seed, "parameters": asdict(PROFILES[profile_name])}
