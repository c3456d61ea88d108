"""A warning, once per function, when fleche runs a call uncached because an input has no digest.

fleche keys a call by the digests of its arguments; when one cannot be digested (a class
without a digest hook, ``__digest__`` or dataclass fields fleche can digest), its wrapper
logs ``No hash for argument: <value>`` on the ``fleche`` logger at every call and runs the
function uncached. A node whose engine or structure has no digest then never caches, and
nothing says which input is the reason. :func:`install` (run when our storage type is
registered with fleche) attaches a filter to that logger which, for the first such call of
each function, finds the arguments that cannot be digested and warns with
:class:`UncachedCallWarning` naming the function and the ports. fleche has no hook for this;
the filter reads the wrapper's frame (``func``, ``args``, ``kwargs`` of
``fleche/wrapper.py``'s ``wrapper``) and says nothing if that ever changes shape.

>>> import warnings  # doctest: +SKIP
>>> warnings.simplefilter("error", UncachedCallWarning)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import warnings
from typing import Any


class UncachedCallWarning(UserWarning):
    """A fleche-cached function ran uncached: an input could not be digested (named in the message)."""


_MESSAGE = "No hash for argument: %s"
_lock = threading.Lock()
_reported: set[str] = set()


def _wrapper_frame() -> Any:
    frame: Any = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "wrapper" and code.co_filename.replace("\\", "/").endswith("fleche/wrapper.py"):
            return frame
        frame = frame.f_back
    return None


def indigestible_ports(func: Any, args: tuple, kwargs: dict) -> list[tuple[str, str]]:
    """The (port, type name) of every argument of ``func(*args, **kwargs)`` fleche cannot digest."""
    from fleche.digest import Indigestible, digest

    try:
        bound = inspect.signature(func).bind_partial(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
    except (TypeError, ValueError):
        arguments = {f"#{i}": a for i, a in enumerate(args)} | kwargs
    ports = []
    for name, value in arguments.items():
        try:
            digest(value)
        except Indigestible as exc:
            culprit = exc.args[0] if exc.args else value
            what = type(value).__name__
            if culprit is not value:
                what += f", holding a {type(culprit).__name__} without a digest"
            ports.append((name, what))
    return ports


class _ReportUncached(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _MESSAGE:
            try:
                self._report()
            except Exception:  # a report must never break the call fleche is about to run
                pass
        return True

    def _report(self) -> None:
        frame = _wrapper_frame()
        if frame is None:
            return
        local = frame.f_locals
        func = local.get("func")
        if func is None:
            return
        name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
        with _lock:
            if name in _reported:
                return
            _reported.add(name)
        ports = indigestible_ports(func, tuple(local.get("args", ())), dict(local.get("kwargs", {})))
        said = ", ".join(f"{port!r} ({what})" for port, what in ports) or "(not found)"
        code = getattr(inspect.unwrap(func), "__code__", None)
        warnings.warn_explicit(  # located at the node function's definition, not in fleche
            f"node function {name} runs uncached: fleche cannot digest its input {said}. "
            "Give the type a digest (fleche.digest.add_hook((Type, fn)), a __digest__ method, or a "
            "dataclass of digestible fields) or mark the port ignored (fleche(ignore=...)). "
            "Reported once per function.",
            UncachedCallWarning,
            filename=code.co_filename if code is not None else "<unknown>",
            lineno=code.co_firstlineno if code is not None else 0,
            module=getattr(func, "__module__", None),
        )


_filter = _ReportUncached()


def install() -> None:
    """Attach the reporting filter to the ``fleche`` logger (idempotent)."""
    logger = logging.getLogger("fleche")
    if _filter not in logger.filters:
        logger.addFilter(_filter)
