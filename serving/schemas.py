"""Request and response bodies of the service, with their bounds.

Requests are flat JSON objects (`{"user_id": "u0042", "k": 5}`); the examples name ids of the
demo workspace (`make demo`: small profile, seed 7), tested. Anything outside the bounds, a
field of the wrong type, a missing required field or an unknown field is refused with HTTP 400
and pydantic's message naming the field and what it accepts; the service adds 400s for item
types the model does not know (it lists the known ones), 404 for an unknown item in /similar,
and 503 while it is not ready.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_K = 500
MAX_SCORE_ITEMS = 1000
MAX_RECENT_ITEMS = 500
MAX_TYPES = 16

# Ids are passed to Milvus inside filter expressions, which pymilvus does not escape: quotes,
# backslashes and control characters are refused rather than mis-parsed.
ID_PATTERN = r"^[^\"'\\\x00-\x1f\x7f]+$"
MAX_ID_LENGTH = 256
ID_HELP = "1 to 256 characters; no quotes, backslashes or control characters"

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
TypeName = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9_]+$")]
Strategy = Literal["model", "recent_items", "new_user"]
ListLength = Annotated[int, Field(ge=1, le=MAX_K, strict=True,
                                  description=f"how many items: an integer from 1 to {MAX_K}")]
ItemTypes = Annotated[list[TypeName] | None, Field(min_length=1, max_length=MAX_TYPES)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Request):
    user_id: Id = Field(description=f"the user to recommend for ({ID_HELP})",
                        examples=["u0042"])
    k: ListLength = 10
    item_types: ItemTypes = Field(
        None, description="only these top-level item types, e.g. [\"podcast\"] (default: all); "
                          "an unknown type is a 400 that lists the known ones")
    exclude_consumed: bool = Field(
        True, strict=True,
        description="true or false: leave out the items in the user's history window at the "
                    "cutoff (and recent_item_ids)")
    recent_item_ids: list[Id] | None = Field(
        None, max_length=MAX_RECENT_ITEMS, examples=[["pc0107", "ab1159"]],
        description="items the user just consumed (most recent first); a user without history "
                    "gets a vector built from them, instead of one from their metadata alone; "
                    "ids not in the catalogue come back in unknown_item_ids")


class SimilarRequest(_Request):
    item_id: Id = Field(description=f"the query item ({ID_HELP}); never in the answer",
                        examples=["pc0107"])
    k: ListLength = 10
    item_types: ItemTypes = Field(None, description="only these top-level item types "
                                                    "(default: all)")


class ScoreRequest(_Request):
    user_id: Id = Field(description=f"the user to score for ({ID_HELP})", examples=["u0042"])
    item_ids: list[Id] = Field(
        min_length=1, max_length=MAX_SCORE_ITEMS, examples=[["ab1159", "pc0107"]],
        description=f"candidates to score and rank (1 to {MAX_SCORE_ITEMS}; duplicates count "
                    "once)")
    recent_item_ids: list[Id] | None = Field(
        None, max_length=MAX_RECENT_ITEMS,
        description="as in /recommend: for a user without history")


class ScoredItem(BaseModel):
    item_id: str
    item_type: str
    score: float = Field(description="the model's score of the item for the user (or query "
                                     "item), higher is better (docs/serving.md gives its "
                                     "scale)")


class RecommendResponse(BaseModel):
    items: list[ScoredItem] = Field(description="best first")
    strategy: Strategy = Field(description="model: the user's features at the cutoff; "
                                           "recent_items: a vector from recent_item_ids; "
                                           "new_user: neither (no history, no known recent "
                                           "items): the model on the user's metadata, if any, "
                                           "and its popularity prior")
    unknown_item_ids: list[str] = Field(
        default_factory=list,
        description="recent_item_ids that are not in the catalogue (ignored; check them)")
    model_version: str
    feature_service: str


class SimilarResponse(BaseModel):
    item_id: str
    items: list[ScoredItem] = Field(description="best first; never the query item")
    model_version: str
    feature_service: str


class ScoreResponse(BaseModel):
    items: list[ScoredItem] = Field(description="the known candidates, best first (ties keep "
                                                "the request's order)")
    unknown_item_ids: list[str] = Field(description="candidates not in the index (not scored)")
    unknown_recent_item_ids: list[str] = Field(
        default_factory=list,
        description="recent_item_ids that are not in the catalogue (ignored; check them)")
    strategy: Strategy
    model_version: str
    feature_service: str
