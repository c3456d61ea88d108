"""Partial updates of h5 archives in place, through the undo journal (issue 15, part 3).

The kill tests fork a real child process that SIGKILLs itself just before its k-th step that
changes the archive, the journal or its link (``journal.step_hook``), for every k of one
update (and of one rollback). Afterwards storage_nodes must open the file as exactly the
old or the new version, h5py alone must read it, and nothing of the journal may remain.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import zlib

import h5py
import msgpack
import numpy as np
import pytest

import storage_nodes as sn
from storage_nodes.backends.h5 import compaction, datasets, journal, reader

OLD = {
    "big": np.arange(100_000, dtype=np.float64),
    "small": {"e": 1.0, "steps": [1, 2, 3]},
    "plain": {f"k{i}": i for i in range(50)},
}
#: (key, new value): an inline scalar, a new heap entry, a replaced big array, an item of packed data
UPDATES = [
    ("small/e", 2.5),
    ("added", {"list": list(range(200)), "text": "x" * 2000}),
    ("big", np.full(50_000, 7.0)),
    ("plain/k3", "three"),
]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


ABSENT = "<absent>"


def _value(path, key: str):
    try:
        return sn.load(path, key=key)
    except sn.KeyNotFoundError:
        return ABSENT


def _in_child(fn, kill_at: int) -> tuple[int, list[str]]:
    """Run ``fn`` in a forked child that SIGKILLs itself just before its ``kill_at``-th step
    (never for 0); the child's wait status and the labels of the steps it began."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        count = 0

        def hook(label: str) -> None:
            nonlocal count
            count += 1
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            os.write(w, label.encode() + b"\n")

        journal.step_hook = hook
        try:
            fn()
        except BaseException:
            os._exit(3)
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks).decode().split()


def _killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _restore(path, data: bytes) -> None:
    for extra in (journal.journal_path(path), journal.pin_path(path)):
        if extra.exists():
            extra.unlink()
    path.write_bytes(data)  # the same inode, as a real in-place update has


_SPEC: dict = {}


def _spec_index(f):
    """The index of an open h5py file read by the procedure of docs/format.md (h5py, msgpack
    and zlib alone; the index log applied)."""
    if not _SPEC:
        from _docs import DOCS, section_namespace

        _SPEC.update(section_namespace(DOCS / "format.md", "### The index log"))
    return _SPEC["read_index"](f)


def _h5py_reads(path, key: str) -> None:
    """h5py and msgpack alone open the file and find the entry's top level in its index."""
    with h5py.File(path, "r") as f:
        index = _spec_index(f)
        assert index["format"] == "storage_nodes-h5"
        names = {n["h"][0] for n in _walk(index["root"]) if "h" in n} | {
            n["ds"] for n in _walk(index["root"]) if "ds" in n
        }
        assert names <= set(f), names - set(f)
        for name in names:
            f[name][()]


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            yield n
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)


def _log_size(path) -> int | None:
    with h5py.File(path, "r") as f:
        return f["index_log"].shape[0] if "index_log" in f else None


@pytest.mark.parametrize(
    ("key", "new", "durable", "log"),
    [(k, v, False, "") for k, v in UPDATES]
    + [("added", UPDATES[1][1], True, "")]
    + [(k, v, False, "append") for k, v in UPDATES[:3]]
    + [("added", UPDATES[1][1], True, "append"), ("big", UPDATES[2][1], False, "fold")],
    ids=[k for k, _ in UPDATES]
    + ["added-durable"]
    + [f"{k}-log" for k, _ in UPDATES[:3]]
    + ["added-durable-log", "big-log-fold"],
)
def test_a_sigkill_at_every_step_of_an_update_leaves_the_old_or_the_new_version(
    tmp_path, monkeypatch, key, new, durable, log
):
    """Of a file written whole (the update rewrites /index as format 5), of one with an index
    log (the update appends its change to /index_log), and of one whose log is folded."""
    from storage_nodes.backends.h5 import update as h5update

    path = sn.save(OLD, tmp_path / "run.h5")
    if log:
        sn.save("p1", path, key="small/p1")
        sn.save("p2", path, key="small/p2")  # (the first rewrote /index, this one wrote the log)
        assert _log_size(path)
    if log == "fold":
        monkeypatch.setattr(h5update, "LOG_MIN_BYTES", 0)
        monkeypatch.setattr(h5update, "LOG_SHARE", 0.0)
    logged = _log_size(path)
    original = path.read_bytes()
    old_value = _value(path, key)
    status, steps = _in_child(lambda: sn.save(new, path, key=key, durable=durable), 0)
    assert status == 0 and "overwrite" in steps and steps[-1] == "unpin", steps
    assert _same(sn.load(path, key=key), new)
    if log == "append":
        assert (_log_size(path) or 0) > (logged or 0)
    else:  # the whole index rewritten: no log
        assert _log_size(path) is None
    outcomes = []
    for k in range(1, len(steps) + 1):
        _restore(path, original)
        status, _ = _in_child(lambda: sn.save(new, path, key=key, durable=durable), k)
        assert _killed(status), (k, steps[k - 1], status)
        journaled = journal.journal_path(path).exists()
        back = sn.load(path)  # opening it rolls a journal back
        assert not journal.journal_path(path).exists()
        got = _value(path, key)
        if _same(got, new):
            outcomes.append("new")
        else:
            assert _same(got, old_value), (k, steps[k - 1], got)
            outcomes.append("old")
            assert path.read_bytes()[: len(original)] == original, (k, steps[k - 1])
            if journaled:
                assert path.read_bytes() == original  # rolled back to the byte
        np.testing.assert_array_equal(back["small"]["steps"], [1, 2, 3])  # untouched entries survive
        _h5py_reads(path, key)
        sn.save("next", path, key="small/after")  # and the next update works on it
        assert sn.load(path, key="small/after") == "next"
    # kills before the journal's removal leave the old version, after it the new one
    assert outcomes[0] == "old" and outcomes[-1] == "new" and outcomes == sorted(outcomes, key=["old", "new"].index)
    assert not journal.pin_path(path).exists()


def _journaled_state(path) -> tuple[bytes, bytes, bytes]:
    """(the old file, the file killed after its first overwrite, its journal)."""
    original = path.read_bytes()
    _, steps = _in_child(lambda: sn.save(2.5, path, key="small/e"), 0)
    _restore(path, original)
    status, _ = _in_child(lambda: sn.save(2.5, path, key="small/e"), steps.index("overwrite") + 2)
    assert _killed(status)
    assert journal.journal_path(path).exists() and journal.pin_path(path).exists()
    broken, jbytes = path.read_bytes(), journal.journal_path(path).read_bytes()
    assert broken != original
    return original, broken, jbytes


def _set_state(path, broken: bytes, jbytes: bytes) -> None:
    _restore(path, broken)
    journal.journal_path(path).write_bytes(jbytes)
    os.link(path, journal.pin_path(path))


def test_a_sigkill_at_every_step_of_a_rollback_leaves_a_file_that_rolls_back(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    original, broken, jbytes = _journaled_state(path)
    _set_state(path, broken, jbytes)
    status, steps = _in_child(lambda: sn.load(path), 0)
    assert status == 0 and "rollback" in steps, steps
    assert path.read_bytes() == original
    for k in range(1, len(steps) + 1):
        _set_state(path, broken, jbytes)
        status, _ = _in_child(lambda: sn.load(path), k)
        assert _killed(status), k
        assert sn.load(path, key="small/e") == 1.0
        assert path.read_bytes() == original, steps[k - 1]
        assert not journal.journal_path(path).exists() and not journal.pin_path(path).exists()


def test_a_torn_last_journal_record_is_ignored(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    original, broken, jbytes = _journaled_state(path)
    # a record cut short was never followed by its overwrite; the bytes it names are still old
    body = jbytes[journal.HEADER.size :]
    first = journal.RECORD.size + journal.RECORD.unpack_from(body, 0)[1]
    _set_state(path, broken, jbytes[: journal.HEADER.size + first + 5])
    sn.load(path)
    head = journal.RECORD.unpack_from(body, 0)
    start = head[0]
    restored = path.read_bytes()
    assert restored[start : start + head[1]] == original[start : start + head[1]]
    assert not journal.journal_path(path).exists()


def test_a_journal_of_a_file_replaced_since_is_dropped(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    _journaled_state(path)
    sn.save({"whole": "new"}, path)  # a whole save replaces the file (a new inode)
    assert sn.load(path) == {"whole": "new"}
    assert not journal.journal_path(path).exists() and not journal.pin_path(path).exists()


def test_an_update_is_done_in_place_and_another_program_holding_the_file_makes_it_copy(tmp_path, monkeypatch):
    path = sn.save(OLD, tmp_path / "run.h5")
    inode = path.stat().st_ino
    sn.save(2.0, path, key="small/e")
    assert path.stat().st_ino == inode  # in place
    monkeypatch.setattr(journal, "LOCK_WAIT", 0.05)
    with journal.reading(path):  # a reader holds the file: the update may not wait for ever
        sn.save(3.0, path, key="small/e")
    assert path.stat().st_ino != inode  # done by copying instead
    assert sn.load(path, key="small/e") == 3.0
    inode = path.stat().st_ino
    with h5py.File(path, "r"):  # HDF5's own lock (held while h5py has the file open) counts too
        sn.save(4.0, path, key="small/e")
    assert sn.load(path, key="small/e") == 4.0 and path.stat().st_ino != inode


def test_a_reader_waits_for_the_commit_and_sees_the_new_version(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    entered, release = threading.Event(), threading.Event()
    seen = []

    def hook(label: str) -> None:
        if label == "overwrite" and not entered.is_set():
            entered.set()
            assert release.wait(10)

    def read() -> None:
        assert entered.wait(10)
        seen.append(sn.load(path, key="small/e"))

    reader = threading.Thread(target=read)
    reader.start()
    journal.step_hook = hook
    try:
        writer = threading.Thread(target=lambda: sn.save(2.0, path, key="small/e"))
        writer.start()
        assert entered.wait(10)
        reader.join(0.3)
        assert reader.is_alive() and not seen  # blocked while old bytes are overwritten
        release.set()
        writer.join(10)
        reader.join(10)
    finally:
        journal.step_hook = None
    assert seen == [2.0]


def test_a_failed_write_during_the_commit_is_rolled_back_before_the_error(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    before = path.read_bytes()
    calls = []

    def hook(label: str) -> None:
        calls.append(label)
        if label == "commit":  # every overwrite done, the journal not yet removed
            raise OSError(errno.ENOSPC, "No space left on device")

    journal.step_hook = hook
    try:
        with pytest.raises(sn.NoSpaceError) as err:
            sn.save(np.ones(1000), path, key="small/e")
    finally:
        journal.step_hook = None
    assert err.value.path == str(path) and calls.count("overwrite") >= 1
    assert path.read_bytes() == before
    assert not journal.journal_path(path).exists() and not journal.pin_path(path).exists()
    assert sn.load(path, key="small/e") == 1.0


def test_a_durable_update_in_place_fsyncs_journal_file_and_directory(tmp_path, monkeypatch):
    path = sn.save(OLD, tmp_path / "run.h5")
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.fstat(fd).st_ino) or real(fd))
    sn.save(5.0, path, key="small/e", durable=True)
    assert sn.load(path, key="small/e") == 5.0
    assert synced.count(path.stat().st_ino) >= 2  # the appended data, then the overwrites
    assert path.parent.stat().st_ino in synced  # the journal's directory entry


def test_updates_that_rewrite_much_of_the_file_or_old_files_are_copied(tmp_path, monkeypatch):
    path = sn.save(OLD, tmp_path / "run.h5")
    inode = path.stat().st_ino
    monkeypatch.setattr(journal, "MAX_KEPT_BYTES", 16)
    sn.save(6.0, path, key="small/e")
    assert path.stat().st_ino != inode and sn.load(path, key="small/e") == 6.0
    monkeypatch.undo()
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    inode = path.stat().st_ino
    sn.save(7.0, link, key="small/e")  # a symbolic link: copied (and replaced by the file, as before)
    assert sn.load(link, key="small/e") == 7.0
    assert path.stat().st_ino == inode and sn.load(path, key="small/e") == 6.0  # not changed through the link


@pytest.mark.parametrize("hdf5_locking", ["TRUE", "FALSE"])
def test_a_reader_in_a_loop_never_sees_an_error_or_a_mixed_value(tmp_path, hdf5_locking):
    """With HDF5's own file locking (the default) readers rely on it; without, on their own flock."""
    path = sn.save({"entry": {"i": 0, "copy": [0] * 10, "a": np.zeros(1000)}, "log": {}}, tmp_path / "loop.h5")
    stop = tmp_path / "stop"
    script = textwrap.dedent(
        """
        import os, sys, numpy as np, storage_nodes as sn
        path, stop = sys.argv[1], sys.argv[2]
        reads = errors = 0
        last = -1
        while not os.path.exists(stop) or reads < 50:
            try:
                e = sn.load(path, key="entry")
                assert e["copy"] == [e["i"]] * 10 and (e["a"] == e["i"]).all(), e
                assert e["i"] >= last, (e["i"], last)
                last = e["i"]
                n = len(sn.inspect(path, key="log").root.children)
                assert n >= last - 1, (n, last)
            except Exception as exc:
                errors += 1
                print("FAILED", type(exc).__name__, exc, flush=True)
            reads += 1
        print("READS", reads, "ERRORS", errors, "LAST", last, flush=True)
        """
    )
    env = {**os.environ, "HDF5_USE_FILE_LOCKING": hdf5_locking}
    reader = subprocess.Popen(
        [sys.executable, "-c", script, str(path), str(stop)], stdout=subprocess.PIPE, text=True, env=env
    )
    inode = path.stat().st_ino
    in_place = 0
    for i in range(1, 301):
        sn.save({"i": i, "copy": [i] * 10, "a": np.full(1000, i)}, path, key="entry")
        sn.save(i, path, key=f"log/{i}")
        in_place += path.stat().st_ino == inode
        inode = path.stat().st_ino
    stop.touch()
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0 and "FAILED" not in out and "ERRORS 0" in out, out[-3000:]
    reads = int(out.split("READS")[1].split()[0])
    assert reads >= 50
    assert in_place > 250  # (a few updates compact the file, by copying)
    assert sn.load(path, key="entry")["i"] == 300 and len(sn.load(path, key="log")) == 300


def test_reads_work_where_no_lock_can_be_taken(tmp_path, monkeypatch):
    path = sn.save(OLD, tmp_path / "run.h5")
    sn.save(2.0, path, key="small/e")
    monkeypatch.setattr(journal, "fcntl", None)  # e.g. Windows: no flock, updates are copied
    assert sn.load(path, key="small/e") == 2.0
    inode = path.stat().st_ino
    sn.save(3.0, path, key="small/e")
    assert sn.load(path, key="small/e") == 3.0 and path.stat().st_ino != inode


def test_listings_see_an_update_in_place_at_once(tmp_path):
    path = sn.save({"a": 1, "b": 2}, tmp_path / "l.h5")
    for i in range(20):  # same size each time, within one tick of the kernel clock
        sn.save(i, path, key="a")
        assert sn.inspect(path)["a"].info.get("value", sn.load(path, key="a")) == i
        assert sn.open(path)["a"].load() == i


def test_layout_eoa_is_what_hdf5_reports(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    fd = os.open(path, os.O_RDONLY)
    try:
        eoa = journal.stored_eoa(fd)
    finally:
        os.close(fd)
    assert eoa == path.stat().st_size
    with reader.open_reader(path) as r:
        assert r.fid.get_filesize() == eoa
    damaged = bytearray(path.read_bytes())
    damaged[30] ^= 1  # inside the superblock: its checksum no longer matches
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(damaged))
    fd = os.open(bad, os.O_RDONLY)
    try:
        assert journal.stored_eoa(fd) is None
    finally:
        os.close(fd)


def test_an_update_after_another_program_changed_the_index_keeps_that_change(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    sn.save(2.0, path, key="small/e")  # this process now remembers the index it wrote
    with h5py.File(path, "r+") as f:  # another program edits the index (same size, maybe)
        index = reader.read_index(f.id, path)
        index["metadata"]["edited"] = "elsewhere"
        datasets.write_index(f, index)
    sn.save(3.0, path, key="small/e")
    assert sn.inspect(path).metadata["edited"] == "elsewhere" and sn.load(path, key="small/e") == 3.0


def test_datasets_of_a_replaced_entry_are_deleted(tmp_path):
    path = sn.save(OLD, tmp_path / "run.h5")
    with h5py.File(path, "r") as f:
        before = set(f)
    sn.save(np.zeros(40_000), path, key="big")
    sn.save({"x": list(range(200))}, path, key="small")
    with h5py.File(path, "r") as f:
        middle = set(f)
    sn.save({"x": list(range(300))}, path, key="small")  # the segment of the previous one goes
    with h5py.File(path, "r") as f:
        after = set(f)
    assert any(n.startswith("heap_") for n in middle - after), (middle, after)
    gone = before - after
    assert any(n.startswith("array_") for n in gone), (before, after)
    back = sn.load(path)
    assert np.array_equal(back["big"], np.zeros(40_000)) and back["small"] == {"x": list(range(300))}
    assert back["plain"]["k7"] == 7


def test_the_rollback_procedure_of_docs_format_md_restores_the_old_file(tmp_path):
    from _docs import DOCS, section_namespace

    namespace = section_namespace(DOCS / "format.md", "### In-place updates")
    path = sn.save(OLD, tmp_path / "run.h5")
    original, broken, jbytes = _journaled_state(path)
    namespace["roll_back"](str(path))  # no storage_nodes involved
    assert path.read_bytes() == original
    assert not journal.journal_path(path).exists() and not journal.pin_path(path).exists()
    with h5py.File(path, "r") as f:  # h5py alone reads it
        assert msgpack.unpackb(zlib.decompress(f["index"][()].tobytes()))["format"] == "storage_nodes-h5"
    # a torn first record: nothing to write back (the file is only cut to its old size)
    _set_state(path, broken, jbytes[: journal.HEADER.size + 7])
    namespace["roll_back"](str(path))
    assert path.read_bytes() == broken[: len(original)] and not journal.journal_path(path).exists()


def test_an_object_changed_after_its_update_is_stored_as_it_was(tmp_path):
    path = sn.save({"a": 0, "arr": np.arange(100_000.0)}, tmp_path / "alias.h5")  # (not all packed)
    short, mapping = [1, 2], {"x": 1}
    sn.save(short, path, key="l")  # short flat containers go into the index as they are
    sn.save(mapping, path, key="m")
    short.append(3)
    mapping["y"] = 2
    sn.save(5, path, key="b")  # reuses the index this process wrote
    back = sn.load(path)
    assert (back["a"], back["l"], back["m"], back["b"]) == (0, [1, 2], {"x": 1}, 5)


def test_a_link_left_without_its_journal_is_removed_by_the_next_reader(tmp_path, monkeypatch):
    path = sn.save(OLD, tmp_path / "run.h5")
    before = path.read_bytes()
    os.link(path, journal.pin_path(path))  # a writer killed between its commit and removing the link
    assert sn.load(path, key="small/e") == 1.0
    assert not journal.pin_path(path).exists() and path.read_bytes() == before
    os.link(path, journal.pin_path(path))
    monkeypatch.setattr(os, "unlink", lambda p, *a, **k: None)  # cannot be removed (read-only directory)
    assert sn.load(path, key="small/e") == 1.0  # read past, not retried for ever


def test_resources_counted_by_the_change_match_a_count_of_the_whole_tree(tmp_path):
    """Successive updates in one process count only the replaced and the new subtree; after
    each, the counts kept must be those of the whole index, and the file must hold exactly the
    datasets the index refers to."""
    from storage_nodes.backends.h5 import update as h5update

    path = sn.save({"log": [], "big": np.ones(40_000), "plain": {"a": 1}}, tmp_path / "run.h5")
    steps = [
        (np.arange(50_000.0), "big"),  # a big array replaced: its dataset goes
        ({"x": list(range(200))}, "small"),
        ({"x": list(range(300))}, "small"),  # the heap segment of the previous one goes
        (2, "plain/a"),  # inside packed plain data
        (np.zeros(70_000), "log/0"),
        (np.zeros(10), "log/1"),
        ("text", "log/0"),  # the big array of log/0 goes
        (None, "big"),
    ]
    compared = 0
    for obj, key in steps:
        sn.save(obj, path, key=key)
        with reader.open_reader(path) as r:
            full = compaction.resources(r.index["root"])
        known = h5update._WRITTEN.get(os.fspath(path))  # none after a compaction (the last step)
        if known is not None:
            kept = known[2]
            assert +kept.heaps == +full.heaps and +kept.arrays == +full.arrays and kept.live == full.live, key
            compared += 1
        with h5py.File(path, "r") as f:
            stored = {n for n in f if n.startswith(("heap_", "array_"))}
        assert stored == set(+full.heaps) | set(+full.arrays), (key, stored)
    assert compared == len(steps) - 1
    back = sn.load(path)
    assert back["log"][0] == "text" and np.array_equal(back["log"][1], np.zeros(10))
    assert back["big"] is None and back["plain"] == {"a": 2} and back["small"] == {"x": list(range(300))}
