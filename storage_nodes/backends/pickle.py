"""The ``pickle`` backend: the standard library's pickle (protocol 5) behind a JSON header.

Fast and stores nearly anything importable; loading runs code named by the file, so
``safe=True`` is refused. ``inspect`` reads the header only.
"""

from __future__ import annotations

import pickle
from typing import IO

from ..provenance.metadata import ObjectCollector
from ..provenance.picklers import RecordingPickler
from ._framed import FramedPickleBackend

__all__ = ["PickleBackend"]


class PickleBackend(FramedPickleBackend):
    name = "pickle"
    magic = b"\x93SN-PKL\n"

    def make_pickler(self, f: IO[bytes], collector: ObjectCollector) -> pickle.Pickler:
        return RecordingPickler(f, self.protocol, collector)
