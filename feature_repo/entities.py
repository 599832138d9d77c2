"""The project and its two entities: every feature is keyed by a user or an item."""

from feast import Entity, Project, ValueType

from repo_spec import SPEC

project = Project(
    name=SPEC["project"],
    description="Graph foundation model for personalization: text and HGNN item vectors, "
                "user average vectors, metadata and histories (DESIGN.md)",
)

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A listener (users.user_id of the raw data).",
)

item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A catalogue item of any type: podcast show, episode, audiobook, ...",
)
