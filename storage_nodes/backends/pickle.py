"""The ``pickle`` backend: the standard library's pickle (protocol 5) behind a JSON header.

Fast and stores nearly anything importable; loading runs code named by the file, so
``safe=True`` is refused. ``inspect`` reads the header only.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

from ..metadata import ObjectCollector
from ._framed import FramedPickleBackend

__all__ = ["PickleBackend"]


class _Pickler(pickle.Pickler):
    def __init__(self, f: IO[bytes], protocol: int, collector: ObjectCollector) -> None:
        super().__init__(f, protocol=protocol)
        self._collector = collector

    def reducer_override(self, obj: Any) -> Any:
        self._collector.add_object(obj)
        return NotImplemented


class PickleBackend(FramedPickleBackend):
    name = "pickle"
    suffixes = (".pkl", ".pickle")
    magic = b"\x93SN-PKL\n"

    def make_pickler(self, f: IO[bytes], collector: ObjectCollector) -> pickle.Pickler:
        return _Pickler(f, self.protocol, collector)
