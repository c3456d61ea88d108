"""The cheap argument predicates in front of typeguard never accept what typeguard refuses."""

from __future__ import annotations

import inspect
import os
import typing
from pathlib import Path, PurePosixPath

import pytest
import typeguard
from hypothesis import given, settings
from hypothesis import strategies as st

import storage_nodes as sn
from storage_nodes import _validation
from storage_nodes.api import Recorder

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.sampled_from(["ignore", "warn", "compatible", "strict", "nope", Path("x.h5"), PurePosixPath("y")]),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.sampled_from([print, object(), Recorder, ValueError]),
)


def _public_hints() -> list[tuple[str, str, typing.Any]]:
    hints = []
    for name in ("save", "load", "inspect", "environment", "save_workflow", "load_workflow"):
        func = getattr(sn, name)
        for arg, hint in typing.get_type_hints(inspect.unwrap(func)).items():
            if arg != "return":
                hints.append((name, arg, hint))
    return hints


HINTS = _public_hints()


@settings(max_examples=300, deadline=None)
@given(value=VALUES, which=st.integers(min_value=0, max_value=len(HINTS) - 1))
def test_a_value_the_predicate_accepts_typeguard_accepts(value: object, which: int) -> None:
    _, _, hint = HINTS[which]
    quick = _validation.fast_check(hint)
    if quick is None or not quick(value):
        return
    typeguard.check_type(value, hint, collection_check_strategy=typeguard.CollectionCheckStrategy.FIRST_ITEM)


def test_the_public_hints_have_predicates_and_wrong_values_still_get_typeguards_message(tmp_path: Path) -> None:
    save_hints = {arg: hint for name, arg, hint in HINTS if name == "save"}
    assert all(_validation.fast_check(save_hints[a]) is not None for a in ("path", "backend", "key", "metadata"))
    assert _validation.fast_check(str | os.PathLike[str])(Path("a")) is True
    assert _validation.fast_check(typing.Literal["a", 1])(True) is False  # True == 1, but not a Literal[1]
    with pytest.raises(sn.InvalidArgumentError, match=r"'key'.*\(got 3\)"):
        sn.save(1, tmp_path / "m.h5", key=3)
    assert not (tmp_path / "m.h5").exists()


class _GoodRecorder:
    def record_save(self, path, *, obj=None, key=None, metadata=None, backend=None, type_name=None) -> None:
        pass

    def record_workflow(self, path, *, label, recipe, nodes, metadata=None, backend=None, identify=None) -> None:
        pass


class _HalfRecorder:
    def record_save(self, path, **kw) -> None:
        pass


def test_a_protocol_hint_remembers_accepted_types_only():
    check = _validation.fast_check(Recorder | str | None)
    good, half = _GoodRecorder(), _HalfRecorder()
    assert check is not None and not check(good) and not check(half)
    typeguard.check_type(good, Recorder | str | None)  # typeguard's verdict on both
    with pytest.raises(typeguard.TypeCheckError):
        typeguard.check_type(half, Recorder | str | None)
    for protocol in _validation._protocols(check):
        protocol.learn(good)
        protocol.learn(half)
    assert check(good) and check(_GoodRecorder()) and not check(half)  # by type, once typeguard said so


def test_save_with_a_catalog_checks_the_recorder_by_typeguard_once(tmp_path, monkeypatch):
    calls = []
    real = typeguard.check_type
    monkeypatch.setattr(typeguard, "check_type", lambda *a, **k: (calls.append(a[1]), real(*a, **k))[1])
    for i in range(3):
        sn.save([i], tmp_path / f"{i}.json", catalog=_GoodRecorder())
    assert sum(1 for hint in calls if hint is Recorder) == 1  # learnt at the first save
    with pytest.raises(sn.InvalidArgumentError, match="catalog"):
        sn.save([1], tmp_path / "x.json", catalog=_HalfRecorder())
