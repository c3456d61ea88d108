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
