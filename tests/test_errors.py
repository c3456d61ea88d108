"""Bad input raises typed errors naming the file; failed saves leave old files untouched."""

from __future__ import annotations

import os

import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.atomic import TEMP_PREFIX


class Unpicklable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


def _files(d):
    return sorted(p.name for p in d.iterdir())


def test_unknown_backend_lists_valid_names(tmp_path):
    with pytest.raises(sn.BackendNotFoundError) as err:
        sn.save(1, tmp_path / "x.bin", backend="yaml")
    assert "yaml" in str(err.value) and "pickle" in str(err.value) and "json" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_wrong_argument_types_are_typed_errors(tmp_path):
    with pytest.raises(sn.InvalidArgumentError, match="path"):
        sn.save(1, 42)
    with pytest.raises(sn.InvalidArgumentError, match="overwrite"):
        sn.save(1, tmp_path / "a.pkl", overwrite="yes")
    with pytest.raises(sn.InvalidArgumentError, match="version_policy"):
        sn.load(tmp_path / "a.pkl", version_policy="sometimes")
    with pytest.raises(TypeError):  # InvalidArgumentError is a TypeError
        sn.inspect(None)


def test_metadata_must_be_json_able(tmp_path):
    with pytest.raises(sn.MetadataError, match="JSON"):
        sn.save(1, tmp_path / "a.json", metadata={"when": object()})
    with pytest.raises(sn.MetadataError):
        sn.save(1, tmp_path / "a.json", metadata={"x": float("nan")})
    assert _files(tmp_path) == []


def test_missing_file(tmp_path):
    with pytest.raises(sn.FileNotFoundStorageError) as err:
        sn.load(tmp_path / "nope.pkl")
    assert "nope.pkl" in str(err.value) and isinstance(err.value, FileNotFoundError)
    with pytest.raises(sn.FileNotFoundStorageError):
        sn.inspect(tmp_path / "nope.pkl")


def test_empty_foreign_and_directory_files(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "foreign.pkl").write_bytes(b"just some text")
    with pytest.raises(sn.CorruptFileError, match="empty"):
        sn.load(tmp_path / "empty.pkl")
    with pytest.raises(sn.BackendNotFoundError, match=r"foreign\.pkl"):
        sn.load(tmp_path / "foreign.pkl")
    with pytest.raises(sn.StorageError, match="directory"):
        sn.load(tmp_path)
    with pytest.raises(sn.StorageError, match="directory"):
        sn.save(1, tmp_path)


def test_backend_mismatch_names_the_real_backend(tmp_path):
    path = sn.save([1], tmp_path / "a.pkl")
    with pytest.raises(sn.CorruptFileError, match="'pickle'"):
        sn.load(path, backend="json")


@pytest.mark.parametrize("suffix", [".pkl", ".cpkl", ".json"])
def test_truncated_file_is_a_corrupt_file_error(tmp_path, suffix):
    path = sn.save({"a": np.arange(100)}, tmp_path / f"t{suffix}")
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 3, 20):
        path.write_bytes(raw[:cut])
        with pytest.raises(sn.StorageError) as err:
            sn.load(path)
        assert str(path) in str(err.value)


def test_overwrite_false_refuses_and_keeps_file(tmp_path):
    path = sn.save({"v": 1}, tmp_path / "a.json")
    before = path.read_bytes()
    with pytest.raises(sn.FileExistsStorageError, match="overwrite"):
        sn.save({"v": 2}, path, overwrite=False)
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", [".pkl", ".cpkl", ".json"])
def test_failed_save_leaves_old_file_byte_identical(tmp_path, suffix):
    path = sn.save({"v": 1}, tmp_path / f"a{suffix}")
    before = path.read_bytes()
    with pytest.raises(sn.SerializationError):
        sn.save({"v": [1, Unpicklable()]}, path)
    assert path.read_bytes() == before
    assert _files(tmp_path) == [path.name]


def test_interrupt_during_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = sn.save({"v": 1}, tmp_path / "a.pkl")
    before = path.read_bytes()
    from storage_nodes.backends import pickle as pickle_backend

    def interrupted(self, obj, path, **kwargs):
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pickle_backend.PickleBackend, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sn.save({"v": 2}, path)
    assert path.read_bytes() == before
    assert not [n for n in _files(tmp_path) if n.startswith(TEMP_PREFIX)]


def test_save_keeps_permissions_of_replaced_file(tmp_path):
    path = sn.save(1, tmp_path / "a.pkl")
    os.chmod(path, 0o640)
    sn.save(2, path)
    assert (path.stat().st_mode & 0o777) == 0o640


def test_missing_directory_is_clear(tmp_path):
    with pytest.raises(sn.StorageError, match="does not exist"):
        sn.save(1, tmp_path / "no" / "such" / "a.pkl")


@pytest.mark.parametrize("suffix", [".pkl", ".cpkl", ".json"])
def test_partial_update_on_non_partial_backend_names_capable_backend(tmp_path, suffix):
    path = sn.save({"a": 1}, tmp_path / f"a{suffix}")
    before = path.read_bytes()
    with pytest.raises(sn.UnsupportedOperationError) as err:
        sn.save(2, path, key="a")
    assert "'h5'" in str(err.value) or "none installed" in str(err.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize("suffix", [".pkl", ".cpkl"])
def test_safe_load_refuses_pickles_before_reading(tmp_path, suffix, monkeypatch):
    import pickle

    path = sn.save({"a": 1}, tmp_path / f"a{suffix}")
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(sn.UnsafeLoadError, match="safe=True"):
        sn.load(path, safe=True)


def test_pickle_inspect_deeper_than_header_says_which_backend_browses(tmp_path):
    path = sn.save({"a": {"b": {"c": 1}}}, tmp_path / "a.pkl")
    assert sn.inspect(path, key="a").root.type == "dict"
    with pytest.raises(sn.UnsupportedOperationError, match="browsable"):
        sn.inspect(path, key="a/b/c")


def test_invalid_keys(tmp_path):
    path = sn.save({"a": 1}, tmp_path / "a.json")
    with pytest.raises(sn.InvalidArgumentError, match="empty segment"):
        sn.load(path, key="a//b")
    with pytest.raises(sn.InvalidArgumentError, match="NUL"):
        sn.load(path, key="a\x00")


def test_errors_pickle_across_processes():
    import pickle

    err = sn.KeyNotFoundError("missing", path="/x.h5", key="a/b")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is sn.KeyNotFoundError and back.path == "/x.h5" and back.key == "a/b"
    assert str(back) == "missing"


def test_durable_save_fsyncs_file_and_directory(tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    sn.save({"a": 1}, tmp_path / "a.pkl")
    assert calls == []  # atomic, but not fsynced by default (same cost as pickle.dump)
    sn.save({"a": 1}, tmp_path / "a.pkl", durable=True)
    assert len(calls) == 2  # the data, then the directory entry
    assert sn.load(tmp_path / "a.pkl") == {"a": 1}


def test_stale_temps_of_killed_writers_are_removed(tmp_path):
    import subprocess
    import sys

    from storage_nodes.atomic import remove_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    names = [
        f"{TEMP_PREFIX}a.h5.{pid}.x1",  # a killed whole-file save
        f"{TEMP_PREFIX}{TEMP_PREFIX}a.h5.{pid}.x2.{pid}.x3",  # a killed compaction of that temp
        f"{TEMP_PREFIX}a.h5.{os.getpid()}.x4",  # our own, live: kept
        f"{TEMP_PREFIX}b.h5.{pid}.x5",  # another target: kept
    ]
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    removed = remove_stale_temps(tmp_path / "a.h5")
    assert sorted(p.name for p in removed) == sorted(names[:2])
    assert sorted(_files(tmp_path)) == sorted(names[2:])


def test_a_wrong_argument_type_is_one_line_even_for_unions(tmp_path):
    with pytest.raises(sn.InvalidArgumentError) as exc:
        sn.save(1, tmp_path / "m.h5", metadata=[1])
    text = str(exc.value)
    assert "\n" not in text and "'metadata'" in text and "is not a mapping" in text and "(got [1])" in text
    with pytest.raises(sn.InvalidArgumentError) as exc:
        sn.load(tmp_path / "m.h5", version_policy="nope")
    assert "\n" not in str(exc.value) and "is not any of ('ignore', 'warn', 'compatible', 'strict')" in str(exc.value)
    assert not (tmp_path / "m.h5").exists()


def test_an_option_the_backend_does_not_take_is_refused_before_writing(tmp_path):
    """A misspelt or misplaced option used to be ignored silently (e.g. compression= on json)."""
    with pytest.raises(sn.InvalidArgumentError) as exc:
        sn.save({"a": 1}, tmp_path / "a.json", compression="gzip")
    assert "'json'" in str(exc.value) and "'compression'" in str(exc.value) and "indent" in str(exc.value)
    with pytest.raises(sn.InvalidArgumentError, match="'indent'"):
        sn.save({"a": 1}, tmp_path / "a.pkl", indent=2)
    with pytest.raises(sn.InvalidArgumentError, match="'protocol'"):
        sn.save({"a": 1}, tmp_path / "a.cpkl", protocol=4)
    assert _files(tmp_path) == []
    sn.save({"a": 1}, tmp_path / "b.json", indent=None, durable=True)
    sn.save({"a": 1}, tmp_path / "b.pkl", durable=True)
    assert sn.load(tmp_path / "b.json") == {"a": 1} and sn.load(tmp_path / "b.pkl") == {"a": 1}
    before = (tmp_path / "b.pkl").read_bytes()
    with pytest.raises(sn.InvalidArgumentError):
        sn.save({"b": 2}, tmp_path / "b.pkl", key="b", compresion="gzip")
    assert (tmp_path / "b.pkl").read_bytes() == before


def test_an_optional_argument_error_does_not_talk_about_nonetype(tmp_path):
    with pytest.raises(sn.InvalidArgumentError) as exc:
        sn.save(1, tmp_path / "m.h5", metadata="Cu-3")
    text = str(exc.value)
    assert "None: is not None" in text and "NoneType" not in text, text


@pytest.mark.parametrize("suffix", [".json", ".pkl", ".cpkl"])
def test_a_misspelt_key_gets_a_suggestion(tmp_path, suffix):
    path = sn.save({"energy": -3.2, "outputs": {"forces": [1.0]}}, tmp_path / f"r{suffix}")
    with pytest.raises(sn.KeyNotFoundError) as exc:
        sn.load(path, key="energies")
    assert "(did you mean 'energy'?)" in str(exc.value) and "to list the keys" in str(exc.value)
    with pytest.raises(sn.KeyNotFoundError) as exc:
        sn.load(path, key="outputs/force")
    assert "outputs (dict) has no entry 'force' (did you mean 'forces'?)" in str(exc.value)
    with pytest.raises(sn.KeyNotFoundError) as exc:
        sn.load(path, key="outputs.forces")
    assert "(keys are /-separated: did you mean 'outputs/forces'?)" in str(exc.value)
    with pytest.raises(sn.KeyNotFoundError) as exc:
        sn.load(path, key="zzz")
    assert "did you mean" not in str(exc.value)


def test_a_keyed_save_into_a_missing_directory_is_refused_like_a_whole_save(tmp_path):
    """save(..., key=...) used to create the missing directory (through the lock file) while a
    whole save refuses it: a typo in a directory name silently made a new tree."""
    for key in (None, "a"):
        with pytest.raises(sn.StorageError, match="does not exist; create it first"):
            sn.save(1, tmp_path / "no_such_dir" / "x.h5", key=key)
    assert _files(tmp_path) == []


def test_a_key_passed_as_the_backend_says_to_use_key(tmp_path):
    """load(path, 'energy') is a natural first try; the error used to list backends only."""
    path = sn.save({"energy": -3.2}, tmp_path / "r.h5")
    with pytest.raises(sn.BackendNotFoundError) as exc:
        sn.load(path, "energy")
    assert "pass key='energy'" in str(exc.value)
    with pytest.raises(sn.BackendNotFoundError) as exc:
        sn.save(1.0, path, "outputs/energy")
    assert "pass key='outputs/energy'" in str(exc.value)
    with pytest.raises(sn.BackendNotFoundError) as exc:
        sn.save(1.0, tmp_path / "x.bin", "hdf5")
    assert "(did you mean 'h5'?)" in str(exc.value) and "key=" not in str(exc.value)


@pytest.mark.parametrize("suffix", [".pkl", ".cpkl"])
def test_inspecting_a_pickle_key_that_is_surely_absent_says_so(tmp_path, suffix):
    """The header lists every top-level entry: a missing one is a KeyNotFoundError (with a
    suggestion), not 'load(..., key=...) reads it', which sent users to unpickle for nothing."""
    path = sn.save({"energy": -3.2, "outputs": {"forces": [1.0]}}, tmp_path / f"r{suffix}")
    with pytest.raises(sn.KeyNotFoundError) as exc:
        sn.inspect(path, key="energies/x")
    assert "the root (dict) has no entry 'energies' (did you mean 'energy'?)" in str(exc.value)
    with pytest.raises(sn.UnsupportedOperationError, match="lists only the top level"):
        sn.inspect(path, key="outputs/forces")  # below the header's levels: load it instead
    assert sn.inspect(path, key="outputs").root.length == 1


def test_a_save_lists_its_directory_again_when_it_changed_or_after_quiet_seconds(tmp_path, monkeypatch):
    import subprocess
    import sys

    from storage_nodes import atomic

    listed = []
    real = atomic._scan_stale
    monkeypatch.setattr(atomic, "_scan_stale", lambda target: listed.append(target.name) or real(target))
    monkeypatch.setattr(atomic, "QUIET_SECONDS", 3600.0)  # a slow machine must not make it list again
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{TEMP_PREFIX}a.json.{int(dead.stdout)}.x1"
    target = tmp_path / "a.json"
    sn.save(1, target)
    sn.save(2, target)
    assert listed == ["a.json"]  # the second save found the directory as the first left it
    stale.write_bytes(b"x")  # a killed writer's leftover: the directory's mtime moves
    sn.save(3, target)
    assert listed == ["a.json"] * 2 and not stale.exists()
    # a leftover made within the clock tick of our own last write cannot be told apart by
    # the mtime: it waits for QUIET_SECONDS
    st = os.stat(tmp_path)
    stale.write_bytes(b"x")
    os.utime(tmp_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    sn.save(4, target)
    assert stale.exists() and len(listed) == 2
    monkeypatch.setattr(atomic, "QUIET_SECONDS", 0.0)
    sn.save(5, target)
    assert not stale.exists() and len(listed) == 3
    assert sn.load(target) == 5


def test_open_new_truncates_only_a_file_that_has_content(tmp_path, monkeypatch):
    from storage_nodes import atomic

    truncated = []
    real = os.ftruncate
    monkeypatch.setattr(atomic.os, "ftruncate", lambda fd, n: truncated.append(n) or real(fd, n))
    old = tmp_path / "old.bin"
    old.write_bytes(b"a much longer old content")
    with atomic.open_new(old) as f:
        f.write(b"new")
    assert old.read_bytes() == b"new" and truncated == [0]
    empty = tmp_path / "empty.bin"
    empty.touch()
    with atomic.open_new(empty) as f:
        f.write(b"x")
    missing = tmp_path / "missing.bin"
    with atomic.open_new(missing) as f:
        f.write(b"y")
    assert empty.read_bytes() == b"x" and missing.read_bytes() == b"y" and truncated == [0]


@pytest.mark.parametrize("suffix", [".pkl", ".cpkl", ".json", ".h5"])
def test_a_save_never_truncates_its_fresh_temporary_file(tmp_path, monkeypatch, suffix):
    # a truncation to size 0 makes ext4 allocate the file's blocks at its close (auto_da_alloc)
    import builtins

    from storage_nodes import atomic

    opened = []
    real_open = builtins.open
    real_ftruncate = os.ftruncate

    def watching_open(file, mode="r", *args, **kwargs):
        if isinstance(file, str | os.PathLike) and TEMP_PREFIX in os.fspath(file) and "w" in mode:
            opened.append(os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    monkeypatch.setattr(atomic.os, "ftruncate", lambda fd, n: opened.append(n) or real_ftruncate(fd, n))
    target = sn.save({"a": [1, 2.5, "x"]}, tmp_path / f"r{suffix}")
    sn.save({"a": [3]}, target)  # over an existing file too
    assert opened == [] and sn.load(target) == {"a": [3]}


def test_an_archive_with_big_arrays_is_not_made_by_truncating_its_temporary_file(tmp_path, monkeypatch):
    from storage_nodes.backends.h5 import datasets

    modes = []
    real = datasets.h5f.create
    monkeypatch.setattr(datasets.h5f, "create", lambda name, mode, **kw: modes.append(mode) or real(name, mode, **kw))
    target = tmp_path / "big.h5"
    big = np.arange(1 << 16, dtype=np.float64)  # 512 KiB: a dataset of its own, the file made by HDF5
    sn.save({"x": big}, target)
    sn.save({"x": big + 1}, target)  # over an existing file too
    assert modes == [datasets.h5f.ACC_EXCL] * 2
    assert np.array_equal(sn.load(target)["x"], big + 1)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)] == []
