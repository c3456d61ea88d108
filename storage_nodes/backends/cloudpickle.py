"""The ``cloudpickle`` backend: like ``pickle`` but also stores lambdas, local functions and
classes defined in ``__main__`` or a notebook (by value). Loading runs code: ``safe=True``
is refused.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

import cloudpickle

from ..metadata import ObjectCollector
from ._framed import FramedPickleBackend

__all__ = ["CloudpickleBackend"]


class _CloudPickler(cloudpickle.Pickler):
    def __init__(self, f: IO[bytes], protocol: int, collector: ObjectCollector) -> None:
        super().__init__(f, protocol=protocol)
        self._collector = collector

    def reducer_override(self, obj: Any) -> Any:
        self._collector.add_object(obj)
        return super().reducer_override(obj)


class CloudpickleBackend(FramedPickleBackend):
    name = "cloudpickle"
    suffixes = (".cpkl", ".cloudpickle")
    magic = b"\x93SN-CPK\n"

    def make_pickler(self, f: IO[bytes], collector: ObjectCollector) -> pickle.Pickler:
        return _CloudPickler(f, self.protocol, collector)
