"""Picklers that record the classes and functions they meet, for the environment record.

Shared by every backend that pickles (pickle, cloudpickle, the opaque leaves of h5), so
that what a file needs at load time is always named in its environment record.
"""

from __future__ import annotations

import io
import pickle
from typing import IO, Any

import cloudpickle

from .metadata import ObjectCollector

__all__ = ["RecordingCloudPickler", "RecordingPickler", "cloudpickle_dumps"]


class RecordingPickler(pickle.Pickler):
    """``pickle.Pickler`` that adds every class and function it meets to ``collector``."""

    def __init__(self, f: IO[bytes], protocol: int, collector: ObjectCollector) -> None:
        super().__init__(f, protocol=protocol)
        self._collector = collector

    def reducer_override(self, obj: Any) -> Any:
        self._collector.add_object(obj)
        return NotImplemented


class RecordingCloudPickler(cloudpickle.Pickler):
    """``cloudpickle.Pickler`` that adds every class and function it meets to ``collector``."""

    def __init__(self, f: IO[bytes], protocol: int, collector: ObjectCollector) -> None:
        super().__init__(f, protocol=protocol)
        self._collector = collector

    def reducer_override(self, obj: Any) -> Any:
        self._collector.add_object(obj)
        return super().reducer_override(obj)


def cloudpickle_dumps(obj: Any, collector: ObjectCollector, protocol: int = 5) -> bytes:
    """``cloudpickle.dumps`` that records what it meets in ``collector``."""
    buffer = io.BytesIO()
    RecordingCloudPickler(buffer, protocol, collector).dump(obj)
    return buffer.getvalue()
