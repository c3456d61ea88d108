"""fleche's value-storage contract, run against our ``"storage_nodes"`` storage.

Derived from fleche 0.22.2's own suite (``tests/fixtures.py``, ``tests/unit/storage/
test_storage.py``, ``test_short_digest.py``, ``test_file_storage.py``,
``test_thread_safe.py``, ``tests/unit/caches/test_gc.py``, ``tests/unit/test_pickle.py``):
the same checks, written here against the installed fleche package. Every check also runs
on fleche's own pickle storage (``fleche-pickle``), so a check that our storage passes and
fleche's reference fails would show up as a mistake in the contract, not in our storage.
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
import string
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fleche
import numpy as np
import pytest
from fleche.caches import Cache
from fleche.call import Call
from fleche.config import storage_from_config, storage_to_config
from fleche.digest import DIGEST_LENGTH, Digest, digest
from fleche.storage import AmbiguousDigestError, CallMemory, SaveError, ValuePickleFile
from fleche.storage.sql import Sql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storage_nodes as sn
from storage_nodes.caching import ArchiveBackend, ValueArchive

SECRET = [b"test_secret_key_32_bytes_long!!!!"]

# --- fleche's strategies (tests/strategies.py: st_data, st_digested_calls) -------------------
st_data = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.booleans(),
    st.lists(st.integers()),
    st.tuples(st.integers(), st.text()),
    st.dictionaries(st.text(), st.integers()),
    st.builds(np.array, st.lists(st.integers())),
)
st_hex = st.text(min_size=64, max_size=64, alphabet="0123456789abcdef")
st_digested_calls = st.builds(
    Call,
    name=st.text(string.ascii_letters, min_size=1, max_size=10),
    arguments=st.dictionaries(
        st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=5), st_hex, max_size=6
    ),
    metadata=st.builds(dict),
    module=st.one_of(st.none(), st.text(string.ascii_letters, min_size=1, max_size=10)),
    version=st.one_of(st.none(), st.integers(min_value=0, max_value=100)),
    result=st.one_of(st.none(), st_hex),
)
# values with nesting (lists, tuples, dicts of scalars and arrays) for the destructuring path
st_nested = st.recursive(
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(string.ascii_letters, max_size=4), children, max_size=4),
    ),
    max_leaves=10,
)
SLOW = settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- the storages under test --------------------------------------------------------------
VALUE_STORAGES: dict[str, Callable[..., Any]] = {
    "ours": lambda root, **kw: ValueArchive(root, **kw),
    "ours-flat-gzip": lambda root, **kw: ValueArchive(root, prefix_length=0, compression="gzip", **kw),
    "fleche-pickle": lambda root, **kw: ValuePickleFile.with_pickle(root, secret_key=SECRET, **kw),
}
BACKENDS: dict[str, Callable[[Path], Any]] = {
    "ours": lambda root: ArchiveBackend(root),
    "ours-flat-gzip": lambda root: ArchiveBackend(root, prefix_length=0, compression="gzip"),
    "fleche-pickle": lambda root: ValuePickleFile.with_pickle(root, secret_key=SECRET),
}


@pytest.fixture(params=list(VALUE_STORAGES))
def make_values(request, tmp_path) -> Callable[..., Any]:
    factory = VALUE_STORAGES[request.param]
    return functools.partial(factory, tmp_path / request.param)


@pytest.fixture
def value_storage(make_values):
    return make_values()


@pytest.fixture(params=list(BACKENDS))
def storage_backend(request, tmp_path):
    return BACKENDS[request.param](tmp_path / request.param)


def assert_equal(loaded, value) -> None:
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(loaded, value)
        assert loaded.dtype == value.dtype
    else:
        assert loaded == value
        assert type(loaded) is type(value)


# --- StorageBackend: test_storage.py ---------------------------------------------------
@SLOW
@given(value=st_data)
def test_backend_put_get_roundtrip(storage_backend, value):
    key = digest(value)
    try:
        returned = storage_backend.put(value, key)
    except SaveError:
        return
    assert returned == key
    assert_equal(storage_backend.get(key), value)


@SLOW
@given(call=st_digested_calls)
def test_backend_stores_call_objects(storage_backend, call):
    key = call.to_lookup_key()
    storage_backend.put(call, key)
    assert storage_backend.get(key) == call


@SLOW
@given(value=st_data)
def test_backend_short_prefix_expand(storage_backend, value):
    key = digest(value)
    storage_backend.put(value, key)
    assert storage_backend.expand(key[:8]) == key


# --- ValueStorage: save/load, destructuring ------------------------------------------------
@SLOW
@given(value=st_nested)
def test_value_save_load_roundtrip(value_storage, value):
    key = value_storage.save(value)
    assert key == digest(value)
    assert value_storage.contains(key)
    assert_equal(value_storage.load(key), value)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_destructured_values_load_whole(make_values, depth):
    """fleche's destructuring, turned on by an integer remaining_depth, works unchanged."""
    values = make_values(remaining_depth=depth)
    value = {"a": [1, [2, 3]], "b": (4.5, "x"), "c": {"d": np.arange(3)}}
    key = values.save(value)
    loaded = values.load(key)
    assert loaded["a"] == [1, [2, 3]] and loaded["b"] == (4.5, "x")
    np.testing.assert_array_equal(loaded["c"]["d"], np.arange(3))
    if depth == 0:  # every container its own entry: the root holds references only
        assert digest([2, 3]) in set(values.list())
        assert values.child_digests(key)
    assert digest(np.arange(3)) in set(values.list())  # fleche stores arrays apart at any depth


def test_default_stores_one_archive_per_value(tmp_path):
    values = ValueArchive(tmp_path)
    value = {"a": [1, [2, 3]], "c": {"d": np.arange(3)}, "n": None}
    key = values.save(value)
    assert list(values.list()) == [key]
    assert values.child_digests(key) == set()
    np.testing.assert_array_equal(values.load(key)["c"]["d"], np.arange(3))
    assert sn.load(values.path(key), key="a/1") == [2, 3]


# --- short digests: test_short_digest.py ---------------------------------------------------
def test_short_digest_expansion(value_storage):
    k1, k2 = value_storage.save("value1"), value_storage.save("value2")
    assert len(k1) == DIGEST_LENGTH
    for i in range(4, DIGEST_LENGTH):
        if not k2.startswith(k1[:i]):
            assert value_storage.expand(k1[:i]) == k1
            assert value_storage.load(k1[:i]) == "value1"
            break
    else:
        pytest.fail("no unique prefix")


def test_ambiguous_digest(value_storage):
    value_storage.save("val1", Digest("a" * 64))
    value_storage.save("val2", Digest("a" * 10 + "b" + "a" * 53))
    with pytest.raises(AmbiguousDigestError, match="need at least 11 characters"):
        value_storage.expand("aaaa")
    with pytest.raises(AmbiguousDigestError):
        value_storage.load("aaaa")


def test_too_short_and_missing_digest(value_storage):
    key = value_storage.save("value1")
    with pytest.raises(KeyError):
        value_storage.expand(key[:3])
    with pytest.raises(KeyError):
        value_storage.load(key[:3])
    with pytest.raises(KeyError):
        value_storage.load("f" * 64 if not key.startswith("f") else "0" * 64)
    with pytest.raises(KeyError):
        value_storage.load("fffff" if not key.startswith("fffff") else "00000")
    assert not value_storage.contains("zzzz")


def test_shrink(value_storage):
    keys = [value_storage.save(f"v{i}") for i in range(20)]
    for key in keys:
        short = value_storage.shrink(key)
        assert 4 <= len(short) < DIGEST_LENGTH
        assert value_storage.expand(short) == key


# --- eviction: test_storage.py::test_callstorages_evict, test_file_storage.py ----------------
def test_evict(value_storage):
    key = value_storage.save("evict me")
    assert key in set(value_storage.list())
    value_storage.evict(key[:8])
    assert key not in set(value_storage.list())
    assert not value_storage.contains(key)
    with pytest.raises(KeyError):
        value_storage.load(key)
    value_storage.evict(key)  # idempotent with a full key
    key = value_storage.save("evict me")
    value_storage.evict(key)
    assert not value_storage.contains(key)


def test_overwrite_leaves_one_entry(value_storage):
    key = digest("test")
    value_storage.save("first", key=key)
    value_storage.save("second", key=key)
    assert value_storage.load(key) == "second"
    assert list(value_storage.list()) == [key]


def test_failed_load_creates_no_files(value_storage):
    with pytest.raises(KeyError):
        value_storage.load("ab" * 32)
    assert not value_storage.root.exists() or not any(value_storage.root.rglob("*.h5"))


def test_unstorable_value_is_a_save_error(tmp_path):
    values = ValueArchive(tmp_path / "v")
    lock = threading.Lock()  # neither our archive nor pickle can hold a lock
    with pytest.raises(SaveError) as info:
        values.save(lock, Digest("c" * 64))
    assert "lock" in str(info.value).lower()
    assert list(values.list()) == [] and not [p for p in (tmp_path / "v").rglob("*") if p.is_file()]


def test_list_ignores_foreign_files(tmp_path):
    values = ValueArchive(tmp_path)
    key = values.save("kept")
    (tmp_path / key[:2] / "notes.txt").write_text("x")
    (tmp_path / key[:2] / f".sn-tmp-{key}.h5.123").write_text("x")
    (tmp_path / ("a" * 64)).write_text("x")  # a flat-layout name in a prefixed root
    (tmp_path / "zz").mkdir()
    assert list(values.list()) == [key]


def test_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path):
    values = ValueArchive(tmp_path)
    key = values.save({"x": 1})
    values.path(key).write_bytes(b"not an archive at all")
    with pytest.raises(KeyError):
        values.load(key)
    values.save({"x": 1})
    assert values.load(key) == {"x": 1}


# --- gc: tests/unit/caches/test_gc.py ------------------------------------------------------
@pytest.fixture
def gc_cache(make_values):
    return Cache(values=make_values(), calls=CallMemory({}))


@pytest.fixture
def split_cache(make_values):
    return Cache(values=make_values(remaining_depth=0), calls=CallMemory({}))


def test_gc_empty_is_noop(gc_cache):
    assert gc_cache.gc() == set()


def test_gc_retains_referenced_and_evicts_orphans(gc_cache):
    key = gc_cache.save(Call(name="f", arguments={"x": 1}, result=2))
    orphan_a = gc_cache.values.save("orphan-a")
    orphan_b = gc_cache.values.save("orphan-b")
    assert gc_cache.gc() == {orphan_a, orphan_b}
    assert orphan_a not in set(gc_cache.values.list())
    loaded = gc_cache.load(key)
    assert loaded.arguments["x"] == 1 and loaded.result == 2


def test_gc_keeps_destructured_subtree(split_cache):
    split_cache.save(Call(name="f", arguments={"xs": [1, [2, 3]]}, result=[4, 5]))
    before = set(split_cache.values.list())
    assert split_cache.gc() == set()
    assert set(split_cache.values.list()) == before


def test_gc_shared_subtree_and_deep_orphans(split_cache):
    shared = [2, 3]
    split_cache.save(Call(name="f", arguments={"xs": [1, shared]}, result=None))
    other = split_cache.values.save([4, shared])
    orphan_root = split_cache.values.save([[10, 20], [30, 40]])
    evicted = split_cache.gc()
    assert {other, orphan_root, digest(10)} <= evicted
    kept = set(split_cache.values.list())
    assert {digest([2, 3]), digest(2), digest(3)} <= kept


def test_gc_skips_dangling_call_reference(split_cache):
    key = split_cache.save(Call(name="f", arguments={"x": 1}, result=2))
    dangling = split_cache.calls.load(key).result
    split_cache.values.evict(dangling)
    orphan = split_cache.values.save("nobody references me")
    assert split_cache.gc() == {orphan}


# --- pickling: tests/unit/test_pickle.py ---------------------------------------------------
def roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


def test_value_storage_picklable(value_storage):
    key = value_storage.save("hello")
    restored = roundtrip(value_storage)
    assert type(restored) is type(value_storage)
    assert restored == value_storage
    assert restored.load(key) == "hello"


@SLOW
@given(call=st_digested_calls)
def test_cache_functional_roundtrip(make_values, tmp_path, call):
    cache = Cache(make_values(), Sql(tmp_path / "calls.db"))
    key = cache.save(call)
    restored = roundtrip(cache)
    assert isinstance(restored, Cache)
    assert restored.load(key).fetch() == call


def test_config_roundtrip(tmp_path):
    values = ValueArchive(
        tmp_path / "v", compression=4, prefix_length=3, version_policy="ignore", safe=True, remaining_depth=2
    )
    config = storage_to_config(values)
    assert config["type"] == "storage_nodes"
    assert storage_from_config(config, "value") == values
    cache = Cache.from_config({"values": config, "calls": {"type": "sql", "url": f"sqlite:///{tmp_path}/c.db"}})
    assert cache.values == values


@pytest.mark.parametrize(
    "bad",
    [{"compression": "zip"}, {"prefix_length": 9}, {"prefix_length": True}, {"version_policy": "lax"}, {"safe": "no"}],
)
def test_bad_config_is_a_clear_error(tmp_path, bad):
    with pytest.raises(sn.InvalidArgumentError, match=next(iter(bad))):
        storage_from_config({"type": "storage_nodes", "root": str(tmp_path), **bad}, "value")
    assert not any(tmp_path.iterdir())


# --- concurrent writers: test_thread_safe.py, plus processes ---------------------------------
def run_workers(worker, count):
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i):
        try:
            worker(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_saves_threads(value_storage):
    saved: list[tuple[Digest, str]] = []
    lock = threading.Lock()

    def worker(tid):
        local = [(value_storage.save(f"t{tid}-i{i}"), f"t{tid}-i{i}") for i in range(25)]
        local += [(value_storage.save("shared"), "shared") for _ in range(5)]  # same key from every thread
        with lock:
            saved.extend(local)

    assert not run_workers(worker, 8)
    assert len(saved) == 8 * 30
    for key, value in saved:
        assert value_storage.load(key) == value
    assert len(set(value_storage.list())) == 8 * 25 + 1


def test_concurrent_load_while_writing(value_storage):
    keys = [value_storage.save(i) for i in range(40)]

    def worker(i):
        if i % 2:
            for k in keys:
                assert value_storage.load(k) in range(40)
        else:
            for j in range(40, 80):
                value_storage.save(j)
                value_storage.save(j % 40)  # rewrite a key readers are reading

    assert not run_workers(worker, 6)


def _process_writer(root: str, worker: int) -> list[str]:
    values = ValueArchive(root)
    keys = []
    for i in range(20):
        keys.append(values.save({"shared": list(range(50)), "i": i}))  # same keys in every process
        keys.append(values.save(f"w{worker}-{i}"))
    return keys


def test_concurrent_writer_processes(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    root = str(tmp_path / "v")
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_process_writer, [root] * 3, range(3)))
    values = ValueArchive(root)
    assert len(set(values.list())) == 20 + 3 * 20  # one archive per value: the shared dicts once
    for worker, keys in enumerate(results):
        for i, key in enumerate(keys[::2]):
            assert values.load(key) == {"shared": list(range(50)), "i": i}
        assert values.load(keys[1::2][-1]) == f"w{worker}-19"
    leftovers = [p for p in Path(root).rglob("*") if p.is_file() and p.suffix != ".h5"]
    assert leftovers == []


# --- what is cached is an archive of ours ------------------------------------------------------
def test_cached_value_is_a_browsable_archive(tmp_path):
    values = ValueArchive(tmp_path)  # the default: one archive per value
    value = {"energy": -3.25, "positions": np.arange(12.0).reshape(4, 3), "meta": {"sample": "Cu-3"}}
    key = values.save(value)
    path = values.path(key)
    assert path == tmp_path / key[:2] / f"{key}.h5"
    listing = sn.inspect(path)
    text = str(listing)
    assert "positions" in text and "float64" in text and "(4, 3)" in text
    assert sn.load(path, key="meta/sample") == "Cu-3"
    np.testing.assert_array_equal(sn.load(path, key="positions"), value["positions"])
    assert listing.metadata["fleche"]["key"] == key


def test_storage_nodes_inspect_command_shows_a_cached_value(tmp_path):
    import subprocess
    import sys

    values = ValueArchive(tmp_path)
    key = values.save({"energy": -3.25, "positions": np.zeros((5, 3))})
    done = subprocess.run(
        [sys.executable, "-m", "storage_nodes", "inspect", str(values.path(key))], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "positions: ndarray (numpy), shape=(5, 3)" in done.stdout
    assert key in done.stdout  # the fleche key, in the metadata line


def test_safe_storage_loads_plain_data_and_refuses_objects(tmp_path):
    values = ValueArchive(tmp_path, safe=True)
    plain = values.save({"x": np.arange(3), "y": [1.5, "a"]})
    np.testing.assert_array_equal(values.load(plain)["x"], np.arange(3))
    obj = values.save(Call(name="f", arguments={}, metadata={}, module=None, version=None, result=None))
    with pytest.raises(sn.UnsafeLoadError, match=r"fleche\.call\.Call"):
        values.load(obj)
    assert ValueArchive(tmp_path).load(obj).name == "f"  # the file is fine; only the safe storage refuses it


_runs: list[int] = []


@fleche.fleche
def _counted(x):
    _runs.append(x)
    return {"x": x, "y": [1, 2]}


def test_damaged_cached_value_is_recomputed_and_rewritten(tmp_path):
    cache = Cache(ValueArchive(tmp_path), CallMemory({}))
    _runs.clear()
    with fleche.cache(cache):
        assert _counted(7) == {"x": 7, "y": [1, 2]}
        (result,) = [k for k in cache.values.list() if sn.inspect(cache.values.path(k)).root.type == "dict"]
        cache.values.path(result).write_bytes(b"damaged")
        assert _counted(7) == {"x": 7, "y": [1, 2]}  # a miss: computed again
        assert len(_runs) == 2
        assert _counted(7) == {"x": 7, "y": [1, 2]}  # and the archive was rewritten: a hit
        assert len(_runs) == 2
    assert sn.load(cache.values.path(result), key="y") == [1, 2]
