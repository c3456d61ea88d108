"""What marks a file as a stored workflow: the format name and version of its header entry,
the header's key, and the parsing of the recipe it holds.

Shared by :mod:`.workflows` (which writes and rebuilds stored workflows) and :mod:`.draw`
(which draws them without rebuilding), so neither imports the other for them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORMAT", "FORMAT_VERSION", "WORKFLOW_KEY", "recipe_from_json"]

FORMAT = "storage_nodes-workflow"
FORMAT_VERSION = 1
#: the top-level entry holding the recipe and format information (not a valid node label)
WORKFLOW_KEY = "@workflow"


def recipe_from_json(text: str) -> Any:
    """Parse a stored recipe (flowrep JSON) into its pydantic model, importing no node code."""
    import flowrep
    import pydantic

    return pydantic.TypeAdapter(flowrep.schemas.RecipeDiscrimination).validate_json(text)
