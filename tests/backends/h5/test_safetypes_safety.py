"""The safety of safe types: hostile files naming other modules or classes are refused, a
missing package gives a clear error (and ``raw=True`` the data), refused entries become
placeholders, ``load_workflow(safe=True, refused="placeholder")`` gives every other port
value, and a library registers its own safe type."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import _safetypes_nodes as nodes
import h5py
import msgpack
import numpy as np
import pandas as pd
import pyiron_workflow as pwf
import pytest
import scipy.sparse as sp

import storage_nodes as sn
from tests import _h5_objects as o
from tests._docs import DOCS, section_namespace

pytestmark = pytest.mark.filterwarnings("ignore:.*has no (input|output) ports:UserWarning")


def _index_ext(code, data):
    assert code == 4, code
    return int.from_bytes(data, "little", signed=True)


def _edit_index(path: Path, change) -> None:
    """Rewrite the index of ``path`` after ``change(index)`` (as a hostile tool would)."""
    read_index = section_namespace(DOCS / "format.md", "### The index log")["read_index"]
    with h5py.File(path, "r+") as f:
        index = read_index(f)
        change(index)
        del f["index"]
        text = msgpack.packb(
            index, use_bin_type=True, default=lambda i: msgpack.ExtType(4, i.to_bytes(16, "little", signed=True))
        )
        f.create_dataset("index", data=np.frombuffer(zlib.compress(text), dtype=np.uint8))


class Forged:
    """Stored as a safe type whose parts a test chooses (then renamed in the index: a forged file)."""


def _node(index, name):
    return next(item[1] for item in index["root"]["items"] if item[0] == name)


def test_a_file_naming_another_module_for_a_safe_type_is_refused_and_imports_nothing(tmp_path):
    """``c`` of an n node must name a class of the safe type's own package: a file naming
    another module is refused (compared as text: that module is never imported)."""
    path = sn.save({"df": pd.DataFrame({"x": [1, 2]}), "n": 1}, tmp_path / "df.h5")

    def change(index):
        index["classes"][_node(index, "df")["c"]] = ["no_such_module_sn_test", "DataFrame"]

    _edit_index(path, change)
    code = f"""
import sys, storage_nodes as sn
for safe in (True, False):
    try:
        sn.load({str(path)!r}, safe=safe)
    except sn.UnsafeLoadError as exc:
        print("refused:", exc.key)
back = sn.load({str(path)!r}, safe=True, refused="placeholder")
print(type(back["df"]).__name__, back["df"].type, back["n"], "no_such_module_sn_test" in sys.modules)
print(type(sn.load({str(path)!r}, raw=True)["df"]).__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:4] == [
        "refused: df",
        "refused: df",
        "Refused no_such_module_sn_test.DataFrame 1 False",
        "Raw",
    ]


def test_an_unknown_safe_type_name_is_refused(tmp_path):
    path = sn.save({"when": o.Color.RED, "x": 1}, tmp_path / "t.h5")

    def change(index):
        _node(index, "when")["t"] = "os.system"

    _edit_index(path, change)
    with pytest.raises(sn.UnsafeLoadError, match=r"safe type 'os\.system'.*not registered"):
        sn.load(path, safe=True)
    back = sn.load(path, safe=True, refused="placeholder")
    assert isinstance(back["when"], sn.Refused) and back["when"].key == "when" and back["x"] == 1
    with pytest.raises(sn.StorageError, match="not registered"):
        sn.load(path)  # safe=False imports the module of the class (tests._h5_objects): nothing registers it


@pytest.mark.parametrize(
    "klass, error",
    [
        (["os", "system"], sn.UnsafeLoadError),  # not a class: refused before anything is called
        (["collections", "OrderedDict"], sn.CorruptFileError),  # a class, but no Enum
    ],
)
def test_an_enum_member_naming_something_else_is_refused(tmp_path, klass, error):
    path = sn.save({"c": o.Color.RED}, tmp_path / "e.h5")

    def change(index):
        index["classes"][_node(index, "c")["c"]] = klass

    _edit_index(path, change)
    for safe in (True, False):
        with pytest.raises((error, sn.UnsafeLoadError)):
            sn.load(path, safe=safe)


def test_a_column_that_is_an_object_node_is_refused_under_safe(tmp_path):
    df = pd.DataFrame({"x": pd.array([pd.Interval(0, 1)], dtype="interval"), "y": [1.0]})
    path = sn.save({"df": df}, tmp_path / "interval.h5")
    pd.testing.assert_frame_equal(sn.load(path)["df"], df)  # pandas' interval array: generic, inside the frame
    with pytest.raises(sn.UnsafeLoadError, match="df/x"):
        sn.load(path, safe=True)
    back = sn.load(path, safe=True, refused="placeholder")
    assert isinstance(back["df"], sn.Refused) or isinstance(back["df"]["x"].iloc[0], sn.Refused)


@pytest.mark.parametrize(
    "value, part, bad, match",
    [
        (pd.array(["ab", "c"], dtype="string"), "offsets", np.array([0, 9, 3]), "offsets"),
        (sp.csr_matrix(np.eye(3)), "indices", np.array([0, 1, 7], dtype=np.int32), "indices must be"),
        (pd.Categorical(["a", "b"]), "codes", np.array([0, 5], dtype=np.int8), "codes"),
    ],
)
def test_damaged_components_are_refused_not_trusted(tmp_path, value, part, bad, match):
    from storage_nodes.backends.safetypes import for_type

    st = for_type(type(value))
    meta, parts = st.encode(value)
    tampered = [(name, bad if name == part else v) for name, v in parts]
    sn.register_safe_type(Forged, "tests.forged." + st.name, lambda _: (meta, tampered), st.decode)
    path = sn.save({"v": Forged()}, tmp_path / "forged.h5")

    def change(index):  # the tampered parts as the real type's n node: a file another tool damaged
        node = _node(index, "v")
        node["t"] = st.name
        index["classes"][node["c"]] = [type(value).__module__, type(value).__qualname__]

    _edit_index(path, change)
    with pytest.raises(sn.CorruptFileError, match=match):
        sn.load(path, safe=True)


def test_a_missing_package_is_named_and_raw_gives_the_arrays(tmp_path):
    import ase.build

    path = sn.save({"atoms": ase.build.bulk("Cu"), "e": -3.5}, tmp_path / "a.h5")
    code = f"""
import sys
sys.modules["ase"] = None  # ase not installed, as far as this process can tell
import storage_nodes as sn
try:
    sn.load({str(path)!r}, safe=True)
except sn.MissingPackageError as exc:
    print("error:", exc.package, "|", exc)
back = sn.load({str(path)!r}, safe=True, refused="placeholder")
print("placeholder:", back["atoms"].type, back["e"])
raw = sn.load({str(path)!r}, raw=True)["atoms"]
print("raw:", raw.meta["formula"], raw["positions"].shape, raw["numbers"].tolist())
print(sn.inspect({str(path)!r})["atoms"].info["formula"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "error: ase | " in out and "install ase, or load with raw=True" in out
    assert "placeholder: ase.atoms.Atoms -3.5" in out
    assert "raw: Cu (1, 3) [29]" in out and out.strip().endswith("Cu")


def test_placeholders_name_class_and_key_and_keep_the_rest(tmp_path):
    data = {
        "atom": o.Atom("Cu", np.zeros(3)),
        "fn": o.record_call,
        "x": [1, 2],
        "when": pd.Timestamp("2020").to_pydatetime(),
    }
    path = sn.save(data, tmp_path / "mixed.h5")
    with pytest.raises(sn.UnsafeLoadError, match="'atom'"):
        sn.load(path, safe=True)
    back = sn.load(path, safe=True, refused="placeholder")
    assert back["atom"] == sn.Refused(
        "atom", "tests._h5_objects.Atom", "safe=True: it holds an instance of tests._h5_objects.Atom"
    )
    assert isinstance(back["fn"], sn.Refused) and back["fn"].type == "tests._h5_objects.record_call"
    assert back["x"] == [1, 2] and back["when"] == data["when"]
    with pytest.raises(sn.InvalidArgumentError, match="refused"):
        sn.load(path, refused="skip")
    with pytest.raises(sn.InvalidArgumentError, match="does not take raw="):
        sn.load(sn.save(1, tmp_path / "one.pkl"), raw=True)


def test_load_workflow_safe_with_placeholders_gives_every_other_port(tmp_path):
    wf = pwf.Workflow("eos")
    wf.strained = pwf.node(nodes.strained, n=3)
    wf.fit = pwf.node(nodes.fit, structures=wf.strained.outputs.structures, energies=wf.strained.outputs.energies)
    wf.set_outputs_to_unconnected_child_output()
    run = wf.run()
    ports = run.result.nodes["strained"].output_ports
    path = sn.save_workflow(wf, tmp_path / "eos.h5")
    with pytest.raises(sn.UnsafeLoadError):
        sn.load_workflow(path, safe=True)
    stored = sn.load_workflow(path, safe=True, refused="placeholder")
    assert np.array_equal(stored.nodes["strained"]["outputs"]["energies"], ports["energies"].value)
    structures = stored.nodes["strained"]["outputs"]["structures"]
    assert [a.get_volume() for a in structures] == [a.get_volume() for a in ports["structures"].value]
    assert [a.get_potential_energy() for a in structures] == ports["energies"].value.tolist()
    assert stored.outputs["fit__e0"] == run.outputs["fit__e0"]
    refused = stored.outputs["fit__fit"]
    assert isinstance(refused, sn.Refused) and refused.type.endswith("_safetypes_nodes.Fit")
    assert refused.key == "fit/outputs/fit"  # where the value is stored (outputs/fit__fit refers to it)


def test_a_registered_safe_type_round_trips_and_is_refused_where_unregistered(tmp_path):
    v = nodes.Vector([1, 2, 3], "eV")
    path = sn.save({"v": v, "n": 1}, tmp_path / "v.h5")
    assert sn.load(path, safe=True)["v"] == v
    assert "vector in eV" in str(sn.inspect(path))
    assert np.array_equal(sn.load(path, key="v/xyz", safe=True), [1.0, 2.0, 3.0])
    code = f"""
import storage_nodes as sn
try:
    sn.load({str(path)!r}, safe=True)
except sn.UnsafeLoadError as exc:
    print("refused", exc)
print(sn.load({str(path)!r}, raw=True)["v"].meta)
print(type(sn.load({str(path)!r})["v"]).__name__)  # safe=False imports the module, which registers it
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
    ).stdout
    assert "refused" in out and "'tests.Vector'" in out and "{'unit': 'eV'}" in out and out.strip().endswith("Vector")


def test_registration_refuses_bad_names_and_taken_ones():
    with pytest.raises(ValueError, match="taken"):
        sn.register_safe_type(dict, "tests.Vector", lambda v: None, lambda m, p: None)
    with pytest.raises(ValueError, match="name"):
        sn.register_safe_type(dict, "", lambda v: None, lambda m, p: None)
    with pytest.raises(TypeError):
        sn.register_safe_type("dict", "x.y", lambda v: None, lambda m, p: None)


def test_an_encoder_giving_what_the_index_cannot_hold_is_a_clear_error(tmp_path):
    class Odd:
        pass

    sn.register_safe_type(Odd, "tests.Odd", lambda v: ({"x": {1: 2}}, []), lambda m, p: Odd())
    globals()["Odd"] = Odd
    Odd.__qualname__ = "Odd"
    with pytest.raises(sn.SerializationError, match="keys that are not str"):
        sn.save({"o": Odd()}, tmp_path / "odd.h5")
    assert not (tmp_path / "odd.h5").exists()


def test_pandas_ase_and_scipy_are_imported_only_for_their_values(tmp_path):
    import datetime

    plain = sn.save({"a": 1, "t": datetime.datetime(2020, 1, 1), "l": [1, 2]}, tmp_path / "plain.h5")
    frame = sn.save({"df": pd.DataFrame({"x": [1.0]})}, tmp_path / "frame.h5")
    code = f"""
import sys, storage_nodes as sn
heavy = ("pandas", "ase", "scipy", "pyarrow")
sn.load({str(plain)!r}, safe=True); print(sn.inspect({str(plain)!r}))
sn.inspect({str(frame)!r}); sn.load({str(frame)!r}, raw=True)
print("before:", [m for m in heavy if m in sys.modules])
sn.load({str(frame)!r}, safe=True)
print("after:", [m for m in heavy if m in sys.modules and m in ("pandas", "ase", "scipy")])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "before: []" in out and "after: ['pandas']" in out
    assert "t: datetime (datetime), iso=2020-01-01T00:00:00" in out
