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
