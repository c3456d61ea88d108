"""A save reads its value once: a container changed by another thread while it is saved is
stored as it was at one moment, or the save raises SerializationError; never an internal
error, never a value it never held (issue 26)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import storage_nodes as sn


def _consistent(value: dict) -> bool:
    """Every state the mutator makes: an odd ``x`` with an array ``flag``, an even one with ``flag == x``."""
    x, flag = value["x"], value["flag"]
    if x % 2:
        return isinstance(flag, np.ndarray) and flag.tolist() == [x, x]
    return flag == x and not isinstance(flag, np.ndarray)


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("backend", ["h5", "json", "pickle"])
def test_a_dict_changed_by_another_thread_is_stored_as_one_of_its_states(tmp_path: Path, size: str, backend: str):
    shared: dict = {"x": 0, "flag": 0}
    if size == "large":  # beyond the inline bound: decomposed item by item
        shared.update({f"pad{i}": i for i in range(40)})
    stop = threading.Event()

    def mutate() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            # one atomic step per state (dict.update of a dict is one C call under the GIL)
            shared.update({"x": i, "flag": np.array([i, i]) if i % 2 else i})
            if i % 7 == 0:  # and now and then a change of size
                shared[f"extra{i % 3}"] = i
            elif i % 7 == 3:
                shared.pop(f"extra{i % 3}", None)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave as often as they can
    thread = threading.Thread(target=mutate, daemon=True)
    thread.start()
    stored, refused = 0, 0
    try:
        for j in range(600):
            path = tmp_path / f"v{j % 3}.{'pkl' if backend == 'pickle' else backend}"
            try:
                sn.save(shared, path, backend=backend)
            except sn.SerializationError as exc:  # the documented outcome of a change of size
                assert "changed size" in str(exc.__cause__) or "changed size" in str(exc), exc
                refused += 1
                continue
            value = sn.load(path)
            assert _consistent(value), value
            stored += 1
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
    assert stored > 500, (stored, refused)  # the retry keeps refusals rare
