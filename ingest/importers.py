"""Bring outside data into a workspace: any parquet files on the contract, or MovieLens.

Order matters: validate everything first, then check the workspace guard, then write through a
staging directory. A refused import leaves the workspace exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gfm.errors import ContractError, WorkspaceError
from gfm.workspace import Workspace
from ingest.contract import (
    SCHEMAS,
    arrow_schema,
    check_table,
    check_unique,
    count_true,
    read_parquet,
    validate,
)
from ingest.raw_store import guard_existing, read_manifest, staged_raw_dir

log = logging.getLogger(__name__)


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def write_validated(
    workspace: Workspace, tables: dict[str, pa.Table], sources: dict[str, str], manifest: dict,
    overwrite: bool,
) -> dict[str, int]:
    """Validate, guard, then atomically write raw/. Returns row counts."""
    checked = validate(tables, sources)
    counts = {name: table.num_rows for name, table in checked.items()}
    manifest = {**manifest, "rows": counts}
    if guard_existing(workspace, manifest, overwrite):
        log.info("raw/ already holds this input; nothing to do")
        return counts
    with staged_raw_dir(workspace, manifest) as staging:
        for name, table in checked.items():
            pq.write_table(table, staging / f"{name}.parquet")
    return counts


def import_parquet(
    workspace: Workspace, interactions: Path, items: Path, users: Path, overwrite: bool = False
) -> dict[str, int]:
    paths = {"items": items, "users": users, "interactions": interactions}
    tables = {name: read_parquet(path, name) for name, path in paths.items()}
    manifest = {
        "source": "gfm import parquet",
        "files": {name: str(path.resolve()) for name, path in paths.items()},
        "fingerprint": _fingerprint(list(paths.values())),
    }
    return write_validated(workspace, tables, {k: str(v) for k, v in paths.items()}, manifest,
                           overwrite)


# Columns that identify an interaction: an appended row equal to a raw/ row on all of them is
# the same event sent twice.
EVENT_KEY = ("user_id", "item_id", "event_ts", "event_type")


def _existing_rows(table: pa.Table, known: pa.Table, key: str, source: str) -> pa.Table:
    """The rows of `table` whose `key` is new. A row whose key raw/ already holds must equal the
    stored row (sent again: dropped); a changed one would rewrite the past: refused."""
    check_unique(table, key, source)  # before aligning rows by key
    known_ids = known.column(key).combine_chunks()
    seen = pc.is_in(table.column(key), value_set=known_ids)
    if not pc.any(seen).as_py():
        return table
    sent = table.filter(seen).to_pandas().set_index(key).sort_index()
    stored = (known.filter(pc.is_in(known.column(key), value_set=pa.array(sent.index)))
              .to_pandas().set_index(key).sort_index())
    changed = ~(sent.eq(stored) | (sent.isna() & stored.isna())).all(axis=1)
    if changed.any():
        names = ", ".join(map(repr, changed[changed].index[:5]))
        raise ContractError(
            f"{source}: refused: {int(changed.sum())} row(s) change a {key} raw/ already holds "
            f"({names}); an append adds new rows only. To correct the past, import the whole "
            "corrected data with `gfm import parquet --overwrite`"
        )
    return table.filter(pc.invert(seen))


def _before_cutoff(table: pa.Table, column: str, cutoff: dt.datetime, source: str,
                   what: str) -> None:
    early = pc.less(table.column(column), pa.scalar(cutoff, pa.timestamp("us")))
    if n := count_true(early):
        first = pc.min(table.column(column)).as_py()
        raise ContractError(
            f"{source}: refused: {n} {what} before the workspace's cutoff {cutoff:%Y-%m-%d} "
            f"(the earliest: {first}); the days before the cutoff are what the trained models "
            "learnt from, so an append may only add days from the cutoff on. To change the "
            "past, import the whole data with `gfm import parquet --overwrite`"
        )


def append_parquet(
    workspace: Workspace, cutoff: dt.datetime, interactions: Path, items: Path | None = None,
    users: Path | None = None,
) -> dict[str, int]:
    """Add new days of interactions, and new items and users, to raw/. Returns the rows added.

    Refused, with nothing written, when the result breaks the contract, or when it would rewrite
    the past: an event, a release or a signup before `cutoff`, or a changed item or user. The
    same file again adds nothing (its fingerprint is in the manifest), and so do rows raw/
    already holds; raw/ is rewritten through a staging directory, so a crash leaves it whole.
    """
    manifest = read_manifest(workspace)
    if manifest is None or not workspace.has_raw_data():
        raise WorkspaceError(
            f"{workspace.raw_dir} holds no raw data to append to: import the data once without "
            "--append (or `gfm generate`), then append new days"
        )
    paths = {name: path for name, path in
             {"items": items, "users": users, "interactions": interactions}.items() if path}
    fingerprint = _fingerprint(list(paths.values()))
    appends = manifest.get("appends", [])
    if any(a["fingerprint"] == fingerprint for a in appends):
        log.info("raw/ already holds this append; nothing to do")
        return {name: 0 for name in SCHEMAS}
    new = {name: (check_table(name, read_parquet(paths[name], name), str(paths[name]))
                  if name in paths else arrow_schema(name).empty_table()) for name in SCHEMAS}
    sources = {name: str(paths.get(name, workspace.raw_path(name))) for name in SCHEMAS}
    raw = {name: pq.read_table(workspace.raw_path(name)) for name in SCHEMAS}
    new["items"] = _existing_rows(new["items"], raw["items"], "item_id", sources["items"])
    new["users"] = _existing_rows(new["users"], raw["users"], "user_id", sources["users"])
    _before_cutoff(new["interactions"], "event_ts", cutoff, sources["interactions"], "event(s)")
    _before_cutoff(new["items"], "created_at", cutoff, sources["items"], "new item(s) released")
    _before_cutoff(new["users"], "signup_at", cutoff, sources["users"], "new user(s) signed up")
    sent_again = pc.is_in(_event_keys(new["interactions"]),
                          value_set=_event_keys(raw["interactions"]))
    if pc.all(sent_again).as_py() and len(new["interactions"]) and not (
            len(new["items"]) or len(new["users"])):
        log.info("raw/ already holds every event of this append; nothing to do")
        return {name: 0 for name in SCHEMAS}
    if pc.any(sent_again).as_py():
        raise ContractError(
            f"{sources['interactions']}: refused: {count_true(sent_again)} event(s) are already "
            "in raw/ (same user, item, time and type): an append holds new events only"
        )
    merged = validate({name: pa.concat_tables([raw[name], new[name]]) for name in SCHEMAS},
                      sources)
    added = {name: new[name].num_rows for name in SCHEMAS}
    appends = [*appends, {"files": {n: str(p.resolve()) for n, p in paths.items()},
                          "fingerprint": fingerprint, "rows": added}]
    with staged_raw_dir(workspace, {**manifest, "appends": appends,
                                    "rows": {n: t.num_rows for n, t in merged.items()}}) as staging:
        for name, table in merged.items():
            pq.write_table(table, staging / f"{name}.parquet")
    return added


def _event_keys(table: pa.Table) -> pa.Array:
    """One string per event of its EVENT_KEY columns (for set membership)."""
    parts = [pc.cast(table.column(c), pa.string()) for c in EVENT_KEY]
    return pc.binary_join_element_wise(*parts, "\x1f").combine_chunks()


# MovieLens -> contract. Movies become top-level items whose type is the family of their first
# listed genre, so the graph has several node and edge types as in the paper; ratings of at
# least 3.5 are streams, lower ones previews (a weak signal of interest, not of satisfaction).
MOVIELENS_TYPE_BY_GENRE = {
    "Action": "action", "Adventure": "action", "Sci-Fi": "action", "Thriller": "action",
    "Crime": "action", "Horror": "action", "War": "action", "Western": "action",
    "Mystery": "action", "Film-Noir": "action", "Fantasy": "action", "IMAX": "action",
    "Drama": "drama", "Romance": "drama", "Documentary": "drama", "Musical": "drama",
    "Comedy": "comedy", "Animation": "comedy", "Children": "comedy",
}
MOVIELENS_STREAM_MIN_RATING = 3.5
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _movielens_items(movies: pd.DataFrame, tags: pd.DataFrame, first_rated: pd.Series) -> pd.DataFrame:
    genres = movies["genres"].fillna("(no genres listed)")
    first_genre = genres.str.split("|").str[0]
    tag_text = (
        tags.assign(tag=tags["tag"].astype(str).str.strip())
        .drop_duplicates(["movieId", "tag"])
        .groupby("movieId")["tag"]
        .apply(lambda s: ", ".join(s.head(20)))
    )
    year = movies["title"].str.extract(_YEAR)[0]
    released = pd.to_datetime(year.fillna("1900") + "-01-01")
    first = movies["movieId"].map(first_rated)
    # Nothing can be rated before it exists: created_at is the earlier of the release year and
    # the first rating.
    created_at = released.where(first.isna() | (released <= first), first)
    description = "Genres: " + genres.str.replace("|", ", ", regex=False)
    with_tags = movies["movieId"].map(tag_text)
    description = description.where(with_tags.isna(), description + ". Tags: " + with_tags)
    return pd.DataFrame(
        {
            "item_id": "m" + movies["movieId"].astype(str),
            "item_type": first_genre.map(MOVIELENS_TYPE_BY_GENRE).fillna("drama"),
            "parent_id": pd.Series([None] * len(movies), dtype=object),
            "title": movies["title"].str.strip(),
            "description": description,
            "language": "en",
            "genre": first_genre,
            "created_at": created_at.astype("datetime64[us]"),
        }
    )


def import_movielens(workspace: Workspace, directory: Path, overwrite: bool = False) -> dict[str, int]:
    files = {name: directory / f"{name}.csv" for name in ("movies", "ratings", "tags")}
    for path in files.values():
        if not path.exists():
            raise ContractError(
                f"{path}: not found; point `gfm import movielens` at an unpacked MovieLens "
                "directory holding movies.csv, ratings.csv and tags.csv (e.g. ml-latest-small)"
            )
    try:
        movies = pd.read_csv(files["movies"], dtype={"movieId": "int64", "title": str, "genres": str})
        ratings = pd.read_csv(files["ratings"], dtype={"userId": "int64", "movieId": "int64",
                                                      "rating": "float64", "timestamp": "int64"})
        tags = pd.read_csv(files["tags"], dtype={"userId": "int64", "movieId": "int64", "tag": str,
                                                "timestamp": "int64"})
    except (ValueError, KeyError) as exc:
        raise ContractError(f"{directory}: not in the MovieLens CSV layout ({exc})") from None

    ratings["event_ts"] = pd.to_datetime(ratings["timestamp"], unit="s").astype("datetime64[us]")
    first_rated = ratings.groupby("movieId")["event_ts"].min()
    items = _movielens_items(movies, tags, first_rated)
    interactions = pd.DataFrame(
        {
            "user_id": "u" + ratings["userId"].astype(str),
            "item_id": "m" + ratings["movieId"].astype(str),
            "event_ts": ratings["event_ts"],
            "event_type": ratings["rating"]
            .ge(MOVIELENS_STREAM_MIN_RATING)
            .map({True: "stream", False: "preview"}),
            # A rating says nothing of time played: count whole minutes per half-star.
            "played_ms": (ratings["rating"] * 2 * 60_000).astype("int64"),
        }
    ).sort_values(["user_id", "event_ts"], kind="stable")
    users = (
        interactions.groupby("user_id", as_index=False)["event_ts"].min()
        .rename(columns={"event_ts": "signup_at"})
        .assign(country=None, age_bucket=None)[["user_id", "country", "age_bucket", "signup_at"]]
    )
    tables = {
        "items": pa.Table.from_pandas(items, preserve_index=False, schema=arrow_schema("items")),
        "users": pa.Table.from_pandas(users, preserve_index=False, schema=arrow_schema("users")),
        "interactions": pa.Table.from_pandas(interactions, preserve_index=False,
                                             schema=arrow_schema("interactions")),
    }
    sources = {
        "items": str(files["movies"]), "users": str(files["ratings"]),
        "interactions": str(files["ratings"]),
    }
    manifest = {
        "source": f"gfm import movielens {directory.resolve()}",
        "fingerprint": _fingerprint(list(files.values())),
        "licence": "MovieLens: research use only, see the README.txt of the source directory",
    }
    return write_validated(workspace, tables, sources, manifest, overwrite)
