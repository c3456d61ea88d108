"""Every failure to store a value reaches fleche as its ``SaveError``, with the cause chained (issue 26).

fleche falls back only on ``SaveError``: an argument it cannot store is kept as a
digest-only reference (the call is still recorded, the next call is a hit), a result it
cannot store is rejected with a warning (the call still returns). Any other exception
escapes into the node and fails the workflow. One test per kind of failure, each with a
real cause: a value our archive cannot encode, an archive that cannot be written (the
key's path is taken by a directory), the encoder failing inside (a value that changes
itself while it is read), and a full disk (a real tmpfs in a private mount namespace).
"""

from __future__ import annotations

from pathlib import Path

import fleche
import numpy as np
import pytest
from _tmpfs import run_on_tmpfs
from fleche.caches import Cache
from fleche.digest import Digest, digest
from fleche.storage.base import SaveError
from fleche.storage.memory import CallMemory

import storage_nodes as sn
from storage_nodes.caching import ValueArchive

_runs: list[object] = []


class Unstorable:
    """Digestible by fleche (``__digest__``) but refusing to be read (``__getstate__`` raises)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __digest__(self) -> str:
        return digest(("Unstorable", self.n))

    def __getstate__(self) -> dict:
        raise ValueError("this object refuses to be stored")


@fleche.fleche
def _takes(obj, x: int) -> dict:
    _runs.append(x)
    return {"x": x}


@fleche.fleche
def _returns(x: int) -> dict:
    _runs.append(x)
    return {"x": x, "y": [1, 2]}


def _causes(exc: BaseException) -> list[BaseException]:
    chain = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    return chain


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_unencodable_value_is_a_save_error_with_the_serialization_error_chained(tmp_path):
    values = ValueArchive(tmp_path / "v")
    with pytest.raises(SaveError) as info:
        values.save(Unstorable(1))
    cause = info.value.__cause__
    assert isinstance(cause, sn.SerializationError) and "refuses to be stored" in str(cause)
    assert "Unstorable" in str(info.value) and str(values.root) in str(info.value)
    assert _files(tmp_path / "v") == []


def test_unencodable_argument_falls_back_to_its_digest(tmp_path):
    # fleche's fallback: the argument is referenced by digest, the call recorded, the next call a hit
    cache = Cache(ValueArchive(tmp_path), CallMemory({}))
    _runs.clear()
    with fleche.cache(cache):
        assert _takes(Unstorable(3), 5) == {"x": 5}
        assert _takes(Unstorable(3), 5) == {"x": 5}
    assert _runs == [5]
    (call,) = cache.calls.storage.values()
    assert call.arguments["obj"] == digest(Unstorable(3))
    assert not cache.values.contains(call.arguments["obj"])  # referenced, not stored


def test_archive_that_cannot_be_written_is_a_save_error_with_the_storage_error_chained(tmp_path):
    values = ValueArchive(tmp_path)
    value = {"x": 1}
    values.path(digest(value)).mkdir(parents=True)  # the key's path is taken by a directory
    with pytest.raises(SaveError) as info:
        values.save(value)
    assert isinstance(info.value.__cause__, sn.StorageError)
    assert "is a directory" in str(info.value)
    assert values.path(digest(value)).is_dir()  # left as it was


def test_unwritable_result_is_rejected_and_the_call_still_returns(tmp_path):
    cache = Cache(ValueArchive(tmp_path), CallMemory({}))
    cache.values.path(digest({"x": 4, "y": [1, 2]})).mkdir(parents=True)
    _runs.clear()
    with fleche.cache(cache):
        assert _returns(4) == {"x": 4, "y": [1, 2]}
        assert _returns(4) == {"x": 4, "y": [1, 2]}  # not recorded: computed again, never wrong
    assert _runs == [4, 4]
    assert list(cache.calls.list()) == []


class Mutator:
    """Changes ``target`` (a small dict read before it) while the archive reads this object.

    What another thread does to a shared dict during a save, made deterministic: the h5
    encoder of today keeps small dicts by reference and packs them later, so the packing
    meets an array where the dict held an int and raises ``TypeError`` inside the encoder.
    """

    def __init__(self, target: dict) -> None:
        self.target = target

    def __digest__(self) -> str:
        return digest("Mutator")

    def __getstate__(self) -> dict:
        self.target["a"] = np.arange(3)
        return {"k": 1}


def test_internal_encoder_error_is_a_save_error_or_a_consistent_value(tmp_path):
    values = ValueArchive(tmp_path)
    small = {"a": 1}
    value = [small, Mutator(small)]
    key = Digest("d" * 64)
    try:
        values.save(value, key)
    except SaveError as exc:
        # what fleche sees of an encoder failure: its SaveError, the internal TypeError chained
        assert any(isinstance(c, TypeError) for c in _causes(exc)), _causes(exc)
        assert not values.contains(key)
    else:  # an encoder that reads each value once stores one of the states the dict went through
        back = values.load(key)[0]
        assert back == {"a": 1} or np.array_equal(back["a"], np.arange(3))


@fleche.fleche
def _mutating_result(x: int) -> list:
    _runs.append(x)
    small = {"a": x}
    return [small, Mutator(small)]


def test_internal_encoder_error_on_a_result_does_not_fail_the_call(tmp_path):
    cache = Cache(ValueArchive(tmp_path), CallMemory({}))
    _runs.clear()
    with fleche.cache(cache):
        first = _mutating_result(2)
        second = _mutating_result(2)
    assert first[0]["a"] is not None and isinstance(second, list)
    for call in cache.calls.storage.values():  # whatever was recorded loads as a whole value
        assert isinstance(cache.values.load(call.result), list)


CHILD = r"""
import logging, os, sys
import fleche
import numpy as np
from fleche.caches import Cache
from fleche.storage.memory import CallMemory
from fleche.storage.base import SaveError
from storage_nodes.caching import ValueArchive

logging.disable(logging.WARNING)
root = sys.argv[1]
runs = []

@fleche.fleche
def big_result(n):
    runs.append(n)
    return {"a": np.arange(float(n))}

@fleche.fleche
def big_argument(data, k):
    runs.append(k)
    return k * 2

values = ValueArchive(os.path.join(root, "values"))
try:
    values.save(np.arange(400_000.0))
    print("SAVED direct")
except SaveError as exc:
    names = [type(c).__name__ for c in (exc.__cause__, getattr(exc.__cause__, "__cause__", None)) if c]
    print("SAVEERROR direct", names, "no space left on device" in str(exc))
cache = Cache(values, CallMemory({}))
with fleche.cache(cache):
    out = big_result(400_000)                   # ~3.2 MB result on a 1.5 MB disk: rejected
    assert out["a"].shape == (400_000,), out
    assert big_argument(np.ones(400_000), 3) == 6   # ~3.2 MB argument: a digest-only reference
    assert big_argument(np.ones(400_000), 3) == 6   # and the call was recorded: a hit
print("RUNS", runs)
print("CALLS", len(cache.calls.storage))
left = [n for d, _, names in os.walk(root) for n in names if n.startswith(".sn-tmp-")]
print("TEMP", left)
print("DONE")
"""


def test_full_disk_is_a_save_error_and_the_calls_still_return(tmp_path):
    out = run_on_tmpfs(tmp_path, CHILD)
    assert "DONE" in out, out
    assert "SAVEERROR direct ['NoSpaceError'" in out and "True" in out.splitlines()[0], out
    assert "RUNS [400000, 3]" in out, out  # the result was computed once, the argument's call hit
    assert "CALLS 1" in out, out  # only the call whose argument fell back was recorded
    assert "TEMP []" in out, out
