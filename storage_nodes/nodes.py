"""Storage as nodes: ``SaveNode``, ``LoadNode`` and ``InspectNode`` for pyiron_workflow 0.20.x.

Each node is a module-level ``@flowrep.atomic`` function, so it survives a recipe round
trip (``wf.recipe.model_dump_json()`` then ``Workflow.from_recipe``) as the same node, and
each is a thin layer over :func:`storage_nodes.save`, :func:`storage_nodes.load` and
:func:`storage_nodes.inspect`: values are checked there (typeguard) and errors are the
same :class:`~storage_nodes.StorageError` family.

>>> import pyiron_workflow as pwf
>>> from storage_nodes import SaveNode, LoadNode
>>> wf = pwf.Workflow("relax")  # doctest: +SKIP
>>> wf.save = pwf.node(SaveNode, obj=[1, 2], path="relax.json", backend="json")  # doctest: +SKIP
>>> wf.save.inputs.backend = "pickle"  # doctest: +SKIP

The ``backend`` port is hinted ``Literal[None, <registered backend names>]`` so the
pyironflow GUI draws a dropdown (``None``: the backend comes from the file suffix on save
and from the file's bytes on load). A plain string constant for it is accepted by the
small version-gated patch in :mod:`storage_nodes.graph._pwf_compat`, applied on import.

This module's path is part of the stored format: a stored recipe records each node as
``storage_nodes.nodes.<function>``, and ``Workflow.from_recipe`` imports it from there. It stays at
this path on purpose (a public module, not an implementation detail); moving a node
function out of it would break every workflow saved with it.
"""

# No ``from __future__ import annotations``: flowrep reads these hints at decoration time.

from typing import TYPE_CHECKING, Any, Literal

import flowrep

from . import api, registry
from .graph import _pwf_compat
from .provenance.versioning import VersionPolicy

__all__ = ["BACKEND_CHOICES", "BackendChoice", "FindNode", "InspectNode", "LoadNode", "SaveNode"]

_pwf_compat.apply()

#: what the ``backend`` port offers: ``None`` (automatic) and every registered backend name,
#: including plugins registered through entry points before this module was imported
BACKEND_CHOICES: tuple[str | None, ...] = (None, *registry.names())

if TYPE_CHECKING:
    BackendChoice = str | None
else:
    BackendChoice = Literal[BACKEND_CHOICES]


@flowrep.atomic("path")
def SaveNode(
    obj,
    path: str,
    backend: BackendChoice = None,
    key: str | None = None,
    metadata: dict | None = None,
    overwrite: bool = True,
    catalog: str | None = None,
) -> str:
    """Save ``obj`` to ``path`` (or into its entry ``key``) and output the path written.

    Connect the ``path`` output to a downstream node (e.g. a :func:`LoadNode`) to make it
    run after the save. ``backend=None`` picks by suffix (``.json``, ``.pkl``, ``.h5``...).
    ``catalog`` (an SQLite file path or a database URL; ``None``: off) records the save
    there once the file is written (see docs/catalog.md).

    >>> wf.save = pwf.node(SaveNode, obj=wf.calc, path="calc.pkl", backend="pickle")  # doctest: +SKIP
    """
    return str(api.save(obj, path, backend, key=key, metadata=metadata, overwrite=overwrite, catalog=_catalog(catalog)))


def _catalog(location: str | None) -> Any:
    """A catalog port's string as a Catalog (one per location and process), ``None`` off."""
    if location is None:
        return None
    from .catalog import open_catalog

    return open_catalog(location)


@flowrep.atomic("obj")
def LoadNode(
    path: str,
    key: str | None = None,
    backend: BackendChoice = None,
    version_policy: VersionPolicy = "warn",
    safe: bool = False,
):
    """Load the object stored in ``path`` (or only its entry ``key``) and output it.

    The ``obj`` output is left unhinted so it can feed a port of any type.

    >>> wf.prev = pwf.node(LoadNode, path="calc.pkl")  # doctest: +SKIP
    """
    return api.load(path, backend, key=key, version_policy=version_policy, safe=safe)


@flowrep.atomic("listing")
def InspectNode(path: str, key: str | None = None, depth: int | None = None, full: bool = False) -> dict[str, Any]:
    """Describe what ``path`` holds (below ``key``, ``depth`` levels deep; ``None``: all) as
    plain JSON-able data.

    The output is :meth:`storage_nodes.Listing.to_dict`: ``metadata``, ``environment``,
    ``backend`` and the entry tree under ``root``; rebuild the printable form with
    ``Listing.from_dict``. Unless ``full``, it is the summary that printing shows: a run of
    same-shaped entries is one entry with ``info["run"]`` (count, first and last name), at
    most 50 entries per level (the rest counted in ``truncated``).

    >>> wf.info = pwf.node(InspectNode, path=wf.save)  # doctest: +SKIP
    """
    return api.inspect(path, key=key, depth=depth).to_dict(full=full)


@flowrep.atomic("value")
def FindNode(
    catalog: str | None = None,
    node: str | None = None,
    input_values: dict | None = None,
    metadata: dict | None = None,
    port: str | None = None,
    safe: bool = False,
):
    """Output the newest result recorded in ``catalog`` that matches, loaded from its file.

    ``node`` is ``"module.qualname"`` of a node function, ``input_values`` the port values it
    must have been run with (other ports free), ``metadata`` user metadata of the file. The
    output is that node's ``port`` value, or all its outputs as a dict (``port=None``); for
    a plain save (``node=None``) the saved object. ``catalog=None`` is the default catalog
    (``$STORAGE_NODES_CATALOG`` or the per-user file). Stale entries (files moved or
    rewritten) are passed over; no fresh match raises :class:`~storage_nodes.KeyNotFoundError`.
    (flowrep reserves the port names ``inputs`` and ``outputs``, hence ``input_values``.)

    >>> wf.prev = pwf.node(FindNode, catalog="results.sqlite", node="storage_nodes.demo.relax",
    ...                    input_values={"steps": 40}, port="positions")  # doctest: +SKIP
    """
    from .catalog import open_catalog
    from .errors import KeyNotFoundError

    cat = open_catalog(catalog)
    hits = cat.find(node=node, inputs=input_values, metadata=metadata, kind=None if node else "save")
    fresh = [h for h in hits if not h.stale]
    if not fresh:
        stale = f" ({len(hits)} stale entries: files moved or rewritten)" if hits else ""
        raise KeyNotFoundError(
            f"FindNode: catalog {cat.location} has no entry of {node or 'a plain save'} with inputs "
            f"{input_values or {}} and metadata {metadata or {}}{stale}",
            key=node,
        )
    return fresh[0].load(port, safe=safe)
