"""numpy dtype descriptions as JSON and MessagePack carry them, shared by the json and h5 backends.

``np.lib.format.dtype_to_descr`` describes a structured dtype as a list of tuples; JSON and
MessagePack bring the tuples back as lists, which ``descr_to_dtype`` does not accept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dtype_from_descr"]


def _tuplify(descr: Any) -> Any:
    if isinstance(descr, list):
        return [tuple(_tuplify(x) for x in item) if isinstance(item, list) else item for item in descr]
    return descr


def dtype_from_descr(descr: Any) -> np.dtype[Any]:
    """The dtype of a ``dtype_to_descr`` description read back from JSON or MessagePack
    (a dtype string, or a list whose tuples came back as lists)."""
    return np.lib.format.descr_to_dtype(_tuplify(descr))
