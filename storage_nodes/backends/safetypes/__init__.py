"""Safe types: scientific and standard-library values stored as data and rebuilt by fixed
constructors, so that ``load(..., safe=True)`` can read them.

Read :mod:`.registry` first (what a safe type is, :func:`register_safe_type`); one module per
family: :mod:`.stdlib` (datetime, pathlib, uuid, decimal, fractions, enum, singletons),
:mod:`.pandas` (DataFrame, Series, Index and pandas' own arrays), :mod:`.ase` (``Atoms``) and
:mod:`.sparse` (``scipy.sparse``). The third-party packages are imported only when such a
value is met or loaded. :mod:`.placeholders` holds what a load returns instead of a value it
does not rebuild. The stored layout of each type is specified in ``docs/format.md``.
"""

from __future__ import annotations

from .placeholders import Raw, Refused
from .registry import SafeType, by_name, for_type, meta_problem, names, register_safe_type

__all__ = ["Raw", "Refused", "SafeType", "by_name", "for_type", "meta_problem", "names", "register_safe_type"]
