"""storage_nodes.registry: names, the suffix table, content detection, registration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import storage_nodes as sn
from storage_nodes import registry
from storage_nodes.backends.base import Backend
from storage_nodes.listing import Entry, Listing


def test_builtin_suffixes_come_from_the_table():
    assert registry.for_suffix("a.json") == "json"
    assert registry.for_suffix("a.PKL") == "pickle"
    assert registry.for_suffix("a.cloudpickle") == "cloudpickle"
    assert registry.for_suffix("a.hdf5") == "h5"
    assert registry.for_suffix("a.txt") == registry.DEFAULT_BACKEND == "h5"
    assert registry.suffixes("h5") == (".h5", ".hdf5")


def test_saving_json_imports_no_other_backend(tmp_path: Path):
    """Choosing a backend by suffix imports only the chosen one: a .json save needs no h5py."""
    code = (
        "import sys, storage_nodes as sn\n"
        f"sn.save({{'a': 1}}, {str(tmp_path / 'x.json')!r})\n"
        "bad = sorted(m for m in sys.modules if m == 'h5py' or m.startswith(('storage_nodes.backends.h5', "
        "'storage_nodes.backends.pickle', 'storage_nodes.backends.cloudpickle')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
    assert sn.load(tmp_path / "x.json") == {"a": 1}


class _Upper(Backend):
    """A third-party backend: its suffixes come from its class."""

    name = "upper-test"
    suffixes: ClassVar[tuple[str, ...]] = (".upper",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"UPPER\n")

    def write(self, obj: Any, path: Path, *, metadata: dict[str, Any], options: dict[str, Any]) -> None:
        path.write_bytes(b"UPPER\n" + str(obj).upper().encode())

    def read(self, path: Path, *, key: str | None, safe: bool, check: Any) -> Any:
        check(None, None)
        return path.read_bytes()[6:].decode()

    def list(self, path: Path, *, key: str | None = None, depth: int | None = None) -> Listing:
        return Listing(path=str(path), backend=self.name, format_version=1, root=Entry(path="", type="str"))


def test_a_registered_backend_is_chosen_by_its_suffix_and_detected(tmp_path: Path):
    registry.register(_Upper)
    try:
        assert registry.suffixes("upper-test") == (".upper",)
        assert registry.for_suffix("x.upper") == "upper-test"
        path = sn.save("cu", tmp_path / "x.upper")
        assert registry.detect(path) == "upper-test"
        assert sn.load(path) == "CU"
        with pytest.raises(sn.StorageError, match="already registered"):
            registry.register(type("_Other", (_Upper,), {}))
    finally:
        registry._specs.pop("upper-test", None)
        registry._instances.pop("upper-test", None)


def test_an_update_on_a_backend_without_it_names_the_ones_that_can(tmp_path: Path):
    path = sn.save({"a": 1}, tmp_path / "x.pkl")
    with pytest.raises(sn.UnsupportedOperationError) as err:
        sn.save(2, path, key="b")
    assert err.value.message.endswith("use a backend that can: 'h5'"), err.value.message


def test_register_refuses_what_is_not_a_backend():
    with pytest.raises(sn.InvalidArgumentError):
        registry.register(dict)  # type: ignore[arg-type]


def test_unknown_backend_name():
    with pytest.raises(sn.BackendNotFoundError, match="valid backends are"):
        registry.get("hdf6")
