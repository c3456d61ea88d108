"""A full disk is not corruption (issue 16).

Saves run on a real, tiny tmpfs: the test mounts one in a private mount namespace of a
child process (``unshare --mount``; ``--map-root-user`` too when not root), so nothing is
mounted outside it and it vanishes with the child. Whole saves (json, pickle, cloudpickle,
h5) and partial updates (h5, also when the copy of the file itself does not fit) must
raise NoSpaceError naming the file, leave the file byte for byte as it was, and leave no
temporary file. Before the fix they said CorruptFileError or SerializationError.
"""

from __future__ import annotations

import errno

import pytest
from _tmpfs import run_on_tmpfs

import storage_nodes as sn
from storage_nodes.errors import no_space

CHILD = r"""
import hashlib, os, sys
import numpy as np
import storage_nodes as sn

root = sys.argv[1]
digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
small = {"a": [1, 2, 3], "b": {"c": "text", "x": np.arange(5.0)}}
big = {"a": np.random.default_rng(0).random(200_000), "b": [str(i) for i in range(20_000)]}  # ~1.8 MB
files = {name: sn.save(small, os.path.join(root, "f" + name)) for name in (".json", ".pkl", ".cpkl", ".h5")}

def fill(leave):
    # fill the file system, then free `leave` bytes
    with open(os.path.join(root, "filler"), "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc
    size = os.path.getsize(os.path.join(root, "filler"))
    os.truncate(os.path.join(root, "filler"), max(0, size - leave))

def attempt(label, fn, path):
    before = digest(path)
    try:
        fn()
        print("SAVED", label)
    except sn.NoSpaceError as exc:
        assert isinstance(exc, OSError) and exc.errno == 28 and exc.path == str(path), exc
        assert "no space left on device" in str(exc) and str(path) in str(exc), exc
        print("NOSPACE", label)
    except Exception as exc:
        print("WRONG", label, type(exc).__name__, str(exc)[:300])
    assert digest(path) == before, label
    left = [n for n in os.listdir(root) if n.startswith(".sn-tmp-")]
    assert not left, (label, left)
    back = sn.load(path)
    assert back["a"] == [1, 2, 3], label

fill(256 * 1024)
for name, path in files.items():
    attempt("whole" + name, lambda: sn.save(big, path), path)
attempt("update.h5", lambda: sn.save(big, files[".h5"], key="b/new"), files[".h5"])
fill(4 * 1024)
attempt("update-copy.h5", lambda: sn.save(1, files[".h5"], key="b/one"), files[".h5"])
attempt("whole-tiny.json", lambda: sn.save(big, files[".json"]), files[".json"])
print("DONE")
"""


def test_disk_full_on_a_real_tmpfs(tmp_path):
    out = run_on_tmpfs(tmp_path, CHILD)
    assert "DONE" in out and "WRONG" not in out, out
    for label in ("whole.json", "whole.pkl", "whole.cpkl", "whole.h5", "update.h5", "update-copy.h5"):
        assert f"NOSPACE {label}" in out, out


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        # how h5py reports a failed HDF5 write: no errno, the C library's text
        OSError(
            "Can't write data (file write failed: time = Tue Dec  1 21:00:00 2026, filename = 'x.h5', "
            "file descriptor = 5, errno = 28, error message = 'No space left on device', buf = 0x1)"
        ),
    ],
)
def test_no_space_is_recognised_through_wrapping(tmp_path, exc):
    try:
        try:
            raise exc
        except OSError:
            raise sn.CorruptFileError("cannot update x: it is not a readable h5 archive") from None
    except sn.StorageError as wrapped:
        found = no_space(wrapped, tmp_path / "x.h5", "k")
    assert isinstance(found, sn.NoSpaceError) and isinstance(found, OSError)
    assert not isinstance(found, sn.CorruptFileError | sn.SerializationError)
    assert found.path == str(tmp_path / "x.h5") and found.key == "k" and "no space left on device" in str(found)
    assert no_space(OSError(errno.EACCES, "Permission denied"), tmp_path) is None


def test_no_space_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(sn.NoSpaceError("full", path="/x", key="k")))
    assert type(err) is sn.NoSpaceError and err.path == "/x" and err.key == "k" and str(err) == "full"
