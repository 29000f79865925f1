"""The base of every resource model, apart so sub-models (``mtls.py``) and ``model.py`` share it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every model: unknown fields are errors, aliases are Kuma's camelCase."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
