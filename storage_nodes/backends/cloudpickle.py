"""The ``cloudpickle`` backend: like ``pickle`` but also stores lambdas, local functions and
classes defined in ``__main__`` or a notebook (by value). Loading runs code: ``safe=True``
is refused.
"""

from __future__ import annotations

import pickle
from typing import IO

from ..provenance.metadata import ObjectCollector
from ..provenance.picklers import RecordingCloudPickler
from ._framed import FramedPickleBackend

__all__ = ["CloudpickleBackend"]


class CloudpickleBackend(FramedPickleBackend):
    name = "cloudpickle"
    magic = b"\x93SN-CPK\n"

    def make_pickler(self, f: IO[bytes], collector: ObjectCollector) -> pickle.Pickler:
        return RecordingCloudPickler(f, self.protocol, collector)
