"""Exact float digests for fleche: an opt-in fix of fleche 0.22's float key collisions.

fleche 0.22 digests a float (and a complex, and a numpy float scalar) through Python's
``hash()``, and ``hash(-1.0) == hash(-2.0) == -2``: a function cached for ``-1.0``
returns that result for ``-2.0`` too. ``hash()`` also equates ``0.0`` and ``-0.0``, and
every float with the integer of the same value (``digest(1.0) == digest(1)``).

:func:`enable_exact_float_digests` installs a hook through fleche's own mechanism
(:func:`fleche.digest.add_hook`) that digests these numbers by their IEEE bytes and dtype
instead. It is off by default: it changes the key of every call that has a float
anywhere in its arguments, so an existing cache misses them all once, and processes with
and without the hook compute different keys for the same call. Turn it on in every
process that shares a cache, or set ``STORAGE_NODES_EXACT_FLOAT_DIGESTS=1`` in the
environment (read when fleche is imported after ``storage_nodes``, which includes
executor workers that unpickle a cache with our storage).

>>> from storage_nodes.caching import enable_exact_float_digests
>>> enable_exact_float_digests()  # doctest: +SKIP
>>> from fleche.digest import digest
>>> digest(-1.0) != digest(-2.0)  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import numpy as np

# fleche.digest is imported inside the functions: this module is imported while fleche
# itself is being imported (by storage.py, which the registration hook loads), and a
# module-level import of fleche here would then be circular.

ENV = "STORAGE_NODES_EXACT_FLOAT_DIGESTS"
_SALT = b"storage_nodes.exact-float-digest/1\x00"
# one hook for all of them: fleche tests every hook with isinstance on every digested part
_TYPES = (float, complex, np.floating, np.complexfloating)
_lock = threading.Lock()


def exact_float_digest(value: float | complex | np.floating | np.complexfloating) -> str:
    """The 64-hex-digit digest of a float or complex from its dtype and little-endian IEEE bytes.

    ``-1.0`` and ``-2.0``, ``0.0`` and ``-0.0``, ``float32`` and ``float64`` of one value
    all differ; a Python float and a ``numpy.float64`` of one value agree.

    >>> exact_float_digest(-1.0) != exact_float_digest(-2.0)
    True
    """
    array = np.asarray(value)
    if array.dtype.kind not in "fc" or array.shape != ():
        raise TypeError(f"exact_float_digest takes a float or complex scalar, got {type(value).__name__}")
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    m = hashlib.sha256(_SALT)
    m.update(array.dtype.str.encode())
    m.update(array.tobytes())
    return m.hexdigest()


_hook: Any = None


def _the_hook() -> Any:
    global _hook
    if _hook is None:
        from fleche.digest import Hook

        _hook = Hook(_TYPES, exact_float_digest)
    return _hook


def exact_float_digests_enabled() -> bool:
    """Whether this process digests floats exactly (the hook is among fleche's digest hooks)."""
    from fleche.digest import get_hooks

    return any(h is _hook for h in get_hooks()) if _hook is not None else False


def enable_exact_float_digests() -> None:
    """Digest floats and complex numbers exactly in this process, from now on (idempotent).

    There is no ``disable``: fleche has no public way to remove a hook, and keys computed
    both ways in one process would only be confusing. See the module docstring for who
    should turn this on.
    """
    from fleche.digest import add_hook

    with _lock:
        if not exact_float_digests_enabled():
            add_hook(_the_hook())


def enable_from_environment() -> bool:
    """Enable exact float digests if ``STORAGE_NODES_EXACT_FLOAT_DIGESTS`` is ``1``/``true``/``yes``."""
    if os.environ.get(ENV, "").strip().lower() in {"1", "true", "yes"}:
        enable_exact_float_digests()
        return True
    return False
