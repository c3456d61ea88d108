"""Concurrent partial updates of one h5 archive from threads and processes lose nothing."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np

import storage_nodes as sn


def _write_keys(path: str, prefix: str, count: int) -> None:
    for i in range(count):
        sn.save({"i": i, "data": np.full(4, i)}, path, key=f"{prefix}{i}")


def test_threads_and_processes_updating_distinct_keys(tmp_path):
    path = str(sn.save({"start": 1}, tmp_path / "shared.h5"))
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=_write_keys, args=(path, f"p{n}-", 3)) for n in range(3)]
    threads = [threading.Thread(target=_write_keys, args=(path, f"t{n}-", 3)) for n in range(8)]
    reads: list[int] = []

    def reader() -> None:
        for _ in range(10):
            reads.append(len(sn.inspect(path).root.children))

    browsing = threading.Thread(target=reader)
    for p in processes:
        p.start()
    for t in [*threads, browsing]:
        t.start()
    for t in [*threads, browsing]:
        t.join()
    for p in processes:
        p.join(timeout=120)
        assert p.exitcode == 0
    back = sn.load(path)
    expected = (
        {"start"}
        | {f"t{n}-{i}" for n in range(8) for i in range(3)}
        | {f"p{n}-{i}" for n in range(3) for i in range(3)}
    )
    assert set(back) == expected
    assert all(back[k]["i"] == int(k.rsplit("-", 1)[1]) for k in expected - {"start"})
    assert reads and all(r >= 1 for r in reads)


def test_threads_saving_whole_files_and_loading(tmp_path):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                p = sn.save({"n": n, "i": i, "a": np.arange(n + i)}, tmp_path / f"f{n}.h5")
                back = sn.load(p)
                assert back["n"] == n and back["i"] == i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
