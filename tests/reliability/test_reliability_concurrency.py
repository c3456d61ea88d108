"""Concurrent writers of distinct keys of one archive lose nothing; readers never see a broken file."""

from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context

import numpy as np

import storage_nodes as sn

THREADS, PROCESSES, KEYS_EACH = 8, 4, 4


def _write(path: str, writer: str, n: int) -> list[str]:
    written = []
    for i in range(n):
        key = f"{writer}/k{i}"
        sn.save({"who": writer, "i": i, "a": np.full(100, i)}, path, key=key)
        written.append(key)
    return written


def test_threads_and_processes_write_one_archive_while_readers_browse(tmp_path):
    path = str(tmp_path / "shared.h5")
    sn.save({"start": True}, path)
    stop = threading.Event()
    reads = {"ok": 0}
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                listing = sn.inspect(path)
                assert listing.backend == "h5"
                assert sn.load(path, key="start") is True
                reads["ok"] += 1
            except BaseException as exc:  # any failure counts, reported below
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        with ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as procs:
            proc_futures = [procs.submit(_write, path, f"proc{p}", KEYS_EACH) for p in range(PROCESSES)]
            with ThreadPoolExecutor(THREADS) as threads:
                thread_results = list(threads.map(lambda t: _write(path, f"thread{t}", KEYS_EACH), range(THREADS)))
            proc_results = [f.result(timeout=600) for f in proc_futures]
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors[0]
    assert reads["ok"] > 0
    written = [k for r in thread_results + proc_results for k in r]
    assert len(written) == (THREADS + PROCESSES) * KEYS_EACH
    everything = sn.load(path)
    for key in written:
        writer, i = key.split("/")
        entry = everything[writer][i]
        assert entry["who"] == writer and entry["i"] == int(i[1:])
        assert (entry["a"] == int(i[1:])).all()
    assert everything["start"] is True
