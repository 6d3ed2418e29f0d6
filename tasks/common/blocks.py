"""What the project's blocks share: a JSON schema built once per block class.

Prefect builds a block's JSON schema whenever it dumps the block with its secrets (once for
every field, to find the fields holding secrets), and again to save it; pydantic does not keep
the result. A block class's schema never changes, so the project's blocks build it once and
hand out copies: saving a Redshift warehouse block then costs a few schema builds, not dozens.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Literal

from pydantic.json_schema import GenerateJsonSchema


class SchemaOnce:
    """Mixed into a Block class before Block: its `model_json_schema` is Block's, built once
    per class and set of arguments, a copy returned each time."""

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool = True,
        ref_template: str = "#/definitions/{model}",
        schema_generator: type[GenerateJsonSchema] = GenerateJsonSchema,
        mode: Literal["validation", "serialization"] = "validation",
    ) -> dict[str, Any]:
        return copy.deepcopy(_built_schema(cls, by_alias, ref_template, schema_generator, mode))


@functools.cache
def _built_schema(
    cls: type[SchemaOnce],
    by_alias: bool,
    ref_template: str,
    schema_generator: type[GenerateJsonSchema],
    mode: Literal["validation", "serialization"],
) -> dict[str, Any]:
    return super(SchemaOnce, cls).model_json_schema(  # type: ignore[misc]
        by_alias, ref_template, schema_generator, mode
    )
