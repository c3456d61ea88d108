"""Time and peak memory of refusing hostile h5 archives (zlib bombs, datasets declaring
gigabytes), each call in a child process, printed as a markdown table for docs/reliability.md.

    python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _hostile import CALLS, KINDS, make, probe, zlib_bomb


def main() -> int:
    bomb = zlib_bomb()
    with tempfile.TemporaryDirectory(prefix="sn-hostile-") as tmp:
        print("| file | size on disk | call | outcome | seconds | peak traced MiB | peak RSS growth MiB |")
        print("|---|---|---|---|---|---|---|")
        for kind in KINDS:
            path = make(kind, Path(tmp) / f"{kind}.h5", bomb)
            for call in CALLS:
                got = probe(path, call, "big" if kind == "array_declares_2e28" else "small/x")
                outcome = got["outcome"].split(":")[0]
                seconds = got.get("seconds")
                print(
                    f"| {kind} | {path.stat().st_size / 1e6:.1f} MB | {call} | {outcome} | "
                    f"{'-' if seconds is None else f'{seconds:.3f}'} | {got.get('traced_peak_mb', 0):.1f} | "
                    f"{got.get('rss_growth_mb', 0):.1f} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
