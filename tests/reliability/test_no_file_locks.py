"""On file systems without file locks (Lustre noflock, NFS without lockd, GPFS via DVS) every
operation works or says why; several writers still exclude each other (issue 28).

Each test runs a child process with ``flock``/``fcntl`` locks made to fail at the C level
(``tests/_nolock.py``), with the errno values such mounts give.
"""

from __future__ import annotations

import errno
import json
import textwrap
from pathlib import Path

import pytest
from _nolock import build, run

ERRNOS = [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP]


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("nolock"))


def _ok(proc) -> str:
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("value", ERRNOS)
def test_the_shim_refuses_locks_and_nothing_else(shim: Path, tmp_path: Path, value: int):
    code = textwrap.dedent(
        """
        import fcntl, json, os, struct
        fd = os.open("f", os.O_RDWR | os.O_CREAT)
        out = {"getfl": fcntl.fcntl(fd, fcntl.F_GETFL) >= 0}
        for name, call in [("flock", lambda: fcntl.flock(fd, fcntl.LOCK_EX)),
                           ("lockf", lambda: fcntl.lockf(fd, fcntl.LOCK_EX))]:
            try:
                call()
                out[name] = 0
            except OSError as exc:
                out[name] = exc.errno
        print(json.dumps(out))
        """
    )
    out = json.loads(_ok(run(shim, code, tmp_path, errno_value=value)))
    assert out == {"getfl": True, "flock": value, "lockf": value}
    only_flock = json.loads(_ok(run(shim, code, tmp_path, errno_value=value, calls="flock")))
    assert only_flock == {"getfl": True, "flock": value, "lockf": 0}


@pytest.mark.parametrize("value", ERRNOS)
def test_plain_saves_loads_and_collections_work(shim: Path, tmp_path: Path, value: int):
    code = textwrap.dedent(
        """
        import warnings
        import storage_nodes as sn
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name in ("r.json", "r.pkl", "r.cpkl"):
                sn.save({"x": 1}, name)
                assert sn.load(name) == {"x": 1}
            col = sn.Collection.create("c/collection.json", title="on a cluster")
            col.add("r.json", name="first")
            col.add("r.pkl", name="second")
            assert sorted(sn.Collection.open("c/collection.json").names) == ["first", "second"]
        said = [str(w.message) for w in caught if w.category.__name__ == "NoFileLocksWarning"]
        assert len(said) == 1, said
        assert "has no file locks" in said[0] and "lock files (O_EXCL)" in said[0], said
        print("ok")
        """
    )
    assert _ok(run(shim, code, tmp_path, errno_value=value)).strip() == "ok"


WRITER = textwrap.dedent(
    """
    import os, sys, time
    from storage_nodes.locks import writer_lock
    target = "counter.txt"
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 15):
        with writer_lock(target, timeout=120):
            n = int(open(target).read()) if os.path.exists(target) else 0
            time.sleep(0.001)  # widen the window a missing lock would lose an update in
            with open(target + ".tmp", "w") as fh:
                fh.write(str(n + 1))
            os.replace(target + ".tmp", target)
    """
)


def test_six_writers_exclude_each_other_without_flock(shim: Path, tmp_path: Path):
    """Read-modify-write under the writer lock from 6 processes at once loses no update."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "LD_PRELOAD": str(shim), "NOLOCK_ERRNO": str(errno.ENOLCK)}
    procs = [
        subprocess.Popen([sys.executable, "-W", "ignore", "-c", WRITER], cwd=tmp_path, env=env) for _ in range(6)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 6
    assert (tmp_path / "counter.txt").read_text() == str(6 * 15)
    assert not (tmp_path / ".counter.txt.soft.sn-lock").exists()  # released


def test_a_lock_left_by_a_killed_writer_is_taken_over(shim: Path, tmp_path: Path):
    dies = "import os\nfrom storage_nodes.locks import writer_lock\nwith writer_lock('r.h5'):\n    os._exit(9)\n"
    proc = run(shim, dies, tmp_path)
    assert proc.returncode == 9
    assert (tmp_path / ".r.h5.soft.sn-lock").exists()  # left behind by the dead process
    takes = "from storage_nodes.locks import writer_lock\nwith writer_lock('r.h5', timeout=5):\n    print('taken')\n"
    assert _ok(run(shim, takes, tmp_path)).strip() == "taken"


def test_a_held_lock_times_out_naming_the_holder_and_the_file(shim: Path, tmp_path: Path):
    import os
    import subprocess
    import sys

    hold = "import time\nfrom storage_nodes.locks import writer_lock\nwith writer_lock('r.h5'):\n"
    hold += "    print('held', flush=True)\n    time.sleep(30)\n"
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    holder = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", hold], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code = textwrap.dedent(
            """
            import storage_nodes as sn
            from storage_nodes.locks import writer_lock
            try:
                with writer_lock("r.h5", timeout=0.3):
                    pass
            except sn.LockTimeoutError as exc:
                print(exc)
            """
        )
        text = _ok(run(shim, code, tmp_path)).strip()
        assert f"process {holder.pid} on host" in text and ".r.h5.soft.sn-lock" in text, text
    finally:
        holder.kill()
        holder.wait()


H5_OPERATIONS = textwrap.dedent(
    """
    import warnings
    import numpy as np
    import storage_nodes as sn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sn.save({"x": 1, "a": np.arange(200_000.0), "grp": {"y": 2}}, "r.h5")
        assert sn.load("r.h5", key="grp/y") == 2
        assert sn.load("r.h5", key="a")[-1] == 199_999.0
        sn.save(3, "r.h5", key="grp/z")  # an in-place update
        sn.save(np.ones(10), "r.h5", key="a")  # replaces the big array (copy or journal)
        assert sn.load("r.h5")["grp"] == {"y": 2, "z": 3}
        assert "grp/z" in sn.inspect("r.h5")
        sn.compact("r.h5")
        assert sn.load("r.h5", key="a").sum() == 10
        assert sn.open("r.h5")["grp"].load() == {"y": 2, "z": 3}
    said = [str(w.message) for w in caught if w.category.__name__ == "NoFileLocksWarning"]
    print(len([s for s in said if "HDF5" in s]), len([s for s in said if "writer lock" in s]))
    """
)


@pytest.mark.parametrize("value", ERRNOS)
def test_h5_archives_save_load_update_and_compact_without_locks(shim: Path, tmp_path: Path, value: int):
    """The archive falls back to HDF5 without its locks and says so once; never "corrupt"."""
    out = _ok(run(shim, H5_OPERATIONS, tmp_path, errno_value=value)).split()
    # one warning for HDF5's locks (HDF5 itself passes over ENOSYS: "locks disabled"), one for the writer lock
    assert out == ["0" if value == errno.ENOSYS else "1", "1"], out


def test_hdf5_use_file_locking_false_is_honoured_silently_for_hdf5(shim: Path, tmp_path: Path):
    out = _ok(run(shim, H5_OPERATIONS, tmp_path, env={"HDF5_USE_FILE_LOCKING": "FALSE"})).split()
    assert out == ["0", "1"], out  # HDF5 was told: nothing to say about it


def test_hdf5_use_file_locking_true_fails_clearly_not_as_corrupt(shim: Path, tmp_path: Path):
    import storage_nodes as sn

    sn.save({"x": 1}, tmp_path / "r.h5")  # written here, where locks work
    code = textwrap.dedent(
        """
        import storage_nodes as sn
        try:
            sn.load("r.h5")
        except sn.CorruptFileError as exc:
            print("CORRUPT", exc)
        except sn.StorageError as exc:
            print("STORAGE", exc)
        """
    )
    text = _ok(run(shim, code, tmp_path, env={"HDF5_USE_FILE_LOCKING": "TRUE"})).strip()
    assert text.startswith("STORAGE") and "HDF5_USE_FILE_LOCKING" in text and "no file locks" in text, text


def test_six_processes_updating_one_archive_lose_nothing_without_locks(shim: Path, tmp_path: Path):
    import os
    import subprocess
    import sys

    import storage_nodes as sn

    sn.save({"start": 0}, tmp_path / "r.h5")
    worker = "import sys, storage_nodes as sn\nw = sys.argv[1]\nfor i in range(8):\n"
    worker += "    sn.save(i, 'r.h5', key=f'w{w}/k{i}')\n"
    env = {**os.environ, "LD_PRELOAD": str(shim), "NOLOCK_ERRNO": str(errno.ENOLCK)}
    env.pop("HDF5_USE_FILE_LOCKING", None)
    procs = [
        subprocess.Popen([sys.executable, "-W", "ignore", "-c", worker, str(w)], cwd=tmp_path, env=env)
        for w in range(6)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0] * 6
    stored = sn.load(tmp_path / "r.h5")
    assert stored == {"start": 0, **{f"w{w}": {f"k{i}": i for i in range(8)} for w in range(6)}}


def test_save_workflow_and_its_reload_without_locks(shim: Path, tmp_path: Path):
    code = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("ignore")
        import pyiron_workflow as pwf
        import storage_nodes as sn
        from storage_nodes import SaveNode
        from storage_nodes.demo import harmonic_energy, random_positions
        wf = pwf.Workflow("cluster")
        wf.pos = pwf.node(random_positions, n=4)
        wf.energy = pwf.node(harmonic_energy, positions=wf.pos)
        wf.save = pwf.node(SaveNode, obj=wf.energy.outputs.energy, path="e.h5", key="energy")
        wf.run()
        sn.save_workflow(wf, "wf.h5")
        stored = sn.load("wf.h5", key="energy/outputs/energy")
        print(sn.load_workflow("wf.h5").label, sn.load("e.h5", key="energy") == stored)
        """
    )
    out = _ok(run(shim, code, tmp_path)).split()
    assert out == ["cluster", "True"], out


CATALOG = textwrap.dedent(
    """
    import sys, time, warnings
    warnings.simplefilter("ignore")
    import storage_nodes as sn
    t0 = time.monotonic()
    try:
        sn.save({"x": 1}, "r.h5", catalog=sys.argv[1])
        found = sn.Catalog(sys.argv[1]).find(kind="save")
        print("OK", len(found))
    except sn.CatalogError as exc:
        print("REFUSED", round(time.monotonic() - t0, 1), exc)
    """
)


def _catalog(shim: Path, tmp_path: Path, url: str, calls: str = "flock,fcntl") -> str:
    import os
    import subprocess
    import sys

    env = {**os.environ, "LD_PRELOAD": str(shim), "NOLOCK_CALLS": calls}
    proc = subprocess.run(
        [sys.executable, "-c", CATALOG, url], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    return _ok(proc).strip()


def test_an_sqlite_catalog_without_record_locks_says_so_within_seconds(shim: Path, tmp_path: Path):
    """SQLite's fcntl locks fail: not 120 s of 'database is locked', but a clear word naming PostgreSQL."""
    text = _catalog(shim, tmp_path, str(tmp_path / "cat.sqlite"))
    assert text.startswith("REFUSED"), text
    seconds = float(text.split()[1])
    assert seconds < 10, text
    assert "no file locks" in text and "PostgreSQL" in text, text
    # the catalog is opened before the save writes: nothing was written, no empty catalog left
    assert not (tmp_path / "r.h5").exists() and not (tmp_path / "cat.sqlite").exists()


def test_an_sqlite_catalog_where_only_flock_fails_works(shim: Path, tmp_path: Path):
    assert _catalog(shim, tmp_path, str(tmp_path / "cat.sqlite"), calls="flock") == "OK 1"


def test_a_postgresql_catalog_works_from_a_mount_without_locks(shim: Path, tmp_path: Path, postgres_url: str):
    assert _catalog(shim, tmp_path, postgres_url) == "OK 1"
