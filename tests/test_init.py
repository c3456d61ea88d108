"""``import storage_nodes``: every public name is listed (tab completion) and resolves."""

from __future__ import annotations

import subprocess
import sys

import storage_nodes as sn


def test_dir_lists_every_public_name_also_the_lazy_ones():
    code = "import storage_nodes as sn; print(' '.join(dir(sn)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    listed = set(out.split())
    assert {"Catalog", "SaveNode", "LoadNode", "FindNode", "CollectNode", "Hit", "save", "open"} <= listed
    assert set(sn.__all__) <= listed


def test_every_name_of_all_resolves():
    for name in sn.__all__:
        assert getattr(sn, name) is not None, name
