"""Workflow nodes for collections: add what a workflow saves to a collection as it runs.

``CollectNode`` is a module-level flowrep function, so recipes rebuild it. Wire the path a
save node returns into ``path``::

    wf.save = pwf.node(SaveNode, obj=wf.relax, path="runs/relax_300K.pkl")
    wf.collect = pwf.node(CollectNode, manifest="paper/collection.json", path=wf.save,
                          name="relax-300K", tags=["Cu", "300K"])

Several CollectNodes may add to one manifest from parallel DAG threads: the collection's
writer lock serialises them, so no member is lost.

This module's path is part of the stored format: a stored recipe records each node as
``storage_nodes.collection_nodes.<function>``, and ``Workflow.from_recipe`` imports it from there. It stays at
this path on purpose (a public module, not an implementation detail); moving a node
function out of it would break every workflow saved with it.
"""

# No ``from __future__ import annotations``: flowrep reads these hints at decoration time.

import flowrep

__all__ = ["CollectNode"]


@flowrep.atomic("collection")
def CollectNode(
    manifest: str,
    path,  # unannotated on purpose: accepts str or Path outputs of any save node
    name: str | None = None,
    tags: list | None = None,
    metadata: dict | None = None,
    replace: bool = True,
) -> str:
    """Add the stored file ``path`` to the collection ``manifest`` (created if missing) as
    member ``name`` (default: the file's stem); returns the manifest path.

    ``replace=True`` (the default) lets a re-run workflow update its member instead of
    failing on the name it added last time.

    >>> CollectNode("paper/collection.json", "runs/relax_300K.pkl", name="relax-300K")  # doctest: +SKIP
    'paper/collection.json'
    """
    from .collections.collection import Collection

    col = Collection.create(manifest, exist_ok=True)
    col.add(path, name=name, tags=tags, metadata=metadata, replace=replace)
    return str(manifest)
