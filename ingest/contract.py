"""The raw data contract (docs/data_contract.md): three parquet tables, validated before any write.

A refusal names the file, the column and a few offending rows, so the producer knows what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gfm.errors import ContractError

STRING = "string"
TIMESTAMP = "timestamp"
INTEGER = "integer"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # STRING | TIMESTAMP | INTEGER
    nullable: bool
    description: str


ITEMS = (
    Column("item_id", STRING, False, "unique item id"),
    Column("item_type", STRING, False, "podcast | episode | audiobook | ... (lower-case)"),
    Column("parent_id", STRING, True, "an episode's show (item_id of a top-level item), else null"),
    Column("title", STRING, False, "display title; part of the text features"),
    Column("description", STRING, True, "free text; part of the text features"),
    Column("language", STRING, True, "ISO 639-1 code"),
    Column("genre", STRING, True, "editorial genre"),
    Column("created_at", TIMESTAMP, False, "release time (naive UTC)"),
)
USERS = (
    Column("user_id", STRING, False, "unique user id"),
    Column("country", STRING, True, "ISO 3166-1 alpha-2 code"),
    Column("age_bucket", STRING, True, "e.g. 18-24"),
    Column("signup_at", TIMESTAMP, True, "account creation (naive UTC)"),
)
INTERACTIONS = (
    Column("user_id", STRING, False, "who (users.user_id)"),
    Column("item_id", STRING, False, "what (items.item_id; an episode or a top-level item)"),
    Column("event_ts", TIMESTAMP, False, "when (naive UTC)"),
    Column("event_type", STRING, False, "stream | follow | preview | ..."),
    Column("played_ms", INTEGER, True, "milliseconds played; null for non-playback events"),
)
SCHEMAS = {"items": ITEMS, "users": USERS, "interactions": INTERACTIONS}
ARROW_TYPES = {STRING: pa.string(), TIMESTAMP: pa.timestamp("us"), INTEGER: pa.int64()}
MAX_EXAMPLES = 5


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.kind], nullable=c.nullable) for c in SCHEMAS[table]]
    )


def _kind_ok(kind: str, arrow_type: pa.DataType) -> bool:
    if kind == STRING:
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if kind == TIMESTAMP:
        return pa.types.is_timestamp(arrow_type) and arrow_type.tz is None
    if kind == INTEGER:
        return pa.types.is_integer(arrow_type)
    raise AssertionError(kind)


def _examples(table: pa.Table, mask: pa.ChunkedArray | pa.Array, columns: list[str]) -> str:
    """A few offending rows as 'row N: col=value' lines."""
    indices = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()[:MAX_EXAMPLES]
    lines = []
    for i in indices:
        values = ", ".join(f"{c}={table.column(c)[i].as_py()!r}" for c in columns)
        lines.append(f"    row {i}: {values}")
    return "\n".join(lines)


def count_true(mask) -> int:
    return int(pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() or 0)


def check_table(name: str, table: pa.Table, source: str) -> pa.Table:
    """Check columns, types and nulls of one table; return it cast to the canonical schema."""
    problems = []
    for col in SCHEMAS[name]:
        if col.name not in table.column_names:
            problems.append(
                f"column {col.name!r} is missing ({col.kind}: {col.description}); "
                f"found columns: {', '.join(table.column_names)}"
            )
            continue
        arrow_type = table.schema.field(col.name).type
        if not _kind_ok(col.kind, arrow_type):
            hint = " (naive UTC, no time zone)" if col.kind == TIMESTAMP else ""
            problems.append(
                f"column {col.name!r} has type {arrow_type}, expected {col.kind}{hint}"
            )
            continue
        if not col.nullable:
            nulls = pc.is_null(table.column(col.name))
            if col.kind == STRING:
                nulls = pc.or_kleene(nulls, pc.equal(pc.utf8_length(table.column(col.name)), 0))
            if n := count_true(nulls):
                problems.append(
                    f"column {col.name!r} has {n} null or empty value(s), it must not:\n"
                    + _examples(table, nulls, [c.name for c in SCHEMAS[name][:3]])
                )
    if problems:
        raise ContractError(f"{source}: " + "\n  ".join(["refused:"] + problems))
    columns = [table.column(c.name).cast(ARROW_TYPES[c.kind]) for c in SCHEMAS[name]]
    return pa.Table.from_arrays(columns, schema=arrow_schema(name))


def check_unique(table: pa.Table, column: str, source: str) -> None:
    counts = pc.value_counts(table.column(column))
    dupes = [v["values"] for v in counts.to_pylist() if v["counts"] > 1][:MAX_EXAMPLES]
    if dupes:
        raise ContractError(
            f"{source}: refused: column {column!r} must be unique; duplicated values: {dupes}"
        )


def _check_foreign_key(
    table: pa.Table, column: str, known: pa.Array, source: str, target: str, skip_null=False
) -> None:
    values = table.column(column)
    unknown = pc.invert(pc.is_in(values, value_set=known))
    if skip_null:
        unknown = pc.and_(unknown, pc.is_valid(values))
    if n := count_true(unknown):
        raise ContractError(
            f"{source}: refused: column {column!r} has {n} value(s) not found in {target}:\n"
            + _examples(table, unknown, table.column_names[:3])
        )


def validate(tables: dict[str, pa.Table], sources: dict[str, str]) -> dict[str, pa.Table]:
    """Validate all three tables (columns, types, nulls, keys); return them in canonical schema."""
    checked = {name: check_table(name, tables[name], sources[name]) for name in SCHEMAS}
    items, users, interactions = checked["items"], checked["users"], checked["interactions"]
    check_unique(items, "item_id", sources["items"])
    check_unique(users, "user_id", sources["users"])
    item_ids = items.column("item_id").combine_chunks()
    _check_foreign_key(items, "parent_id", item_ids, sources["items"], "items.item_id", True)
    # Only one level of nesting: a parent must itself be top-level.
    parents_of_parents = pc.is_in(
        items.column("item_id"),
        value_set=pc.drop_null(items.column("parent_id")).combine_chunks(),
    )
    nested = pc.and_(parents_of_parents, pc.is_valid(items.column("parent_id")))
    if n := count_true(nested):
        raise ContractError(
            f"{sources['items']}: refused: {n} item(s) have a parent_id and are themselves a "
            "parent; only one level (show -> episode) is supported:\n"
            + _examples(items, nested, ["item_id", "item_type", "parent_id"])
        )
    _check_foreign_key(interactions, "item_id", item_ids, sources["interactions"], "items.item_id")
    _check_foreign_key(
        interactions,
        "user_id",
        users.column("user_id").combine_chunks(),
        sources["interactions"],
        "users.user_id",
    )
    return checked


def read_parquet(path: Path, table: str) -> pa.Table:
    if not path.exists():
        raise ContractError(f"{path}: file not found (expected the {table} table)")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ContractError(f"{path}: not a readable parquet file ({exc})") from None
