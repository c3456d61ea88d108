"""Runtime checks of public arguments (typeguard), raised as :class:`InvalidArgumentError`."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import typeguard

from .errors import InvalidArgumentError

F = TypeVar("F", bound=Callable[..., Any])


def validated(func: F) -> F:
    """Check each annotated argument of ``func`` against its hint on every call."""
    signature = inspect.signature(func)
    hints = typing.get_type_hints(func)
    hints.pop("return", None)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(f"{func.__name__}(): {exc}") from None
        for name, value in bound.arguments.items():
            hint = hints.get(name)
            if hint is None or signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                continue
            try:
                typeguard.check_type(
                    value, hint, collection_check_strategy=typeguard.CollectionCheckStrategy.FIRST_ITEM
                )
            except typeguard.TypeCheckError as exc:
                why = str(exc).replace(":\n  ", ": ").replace("\n  ", "; ")  # unions list one reason per line
                why = why.replace("NoneType: is not an instance of NoneType", "None: is not None")
                raise InvalidArgumentError(f"{func.__name__}(): argument {name!r} {why} (got {value!r:.80})") from None
        return func(*args, **kwargs)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
