"""Bring outside data into a workspace: any parquet files on the contract, or MovieLens.

Order matters: validate everything first, then check the workspace guard, then write through a
staging directory. A refused import leaves the workspace exactly as it was.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gfm.errors import ContractError
from gfm.workspace import Workspace
from ingest.contract import arrow_schema, read_parquet, validate
from ingest.raw_store import guard_existing, staged_raw_dir

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
