"""The pyiron_workflow layer: whole workflows and node outputs as stored documents.

A stored workflow is its flowrep recipe (JSON) plus the values of every port of its run,
in any backend; it loads back as a :class:`~.workflows.StoredWorkflow` that rebuilds a
runnable workflow. Open :mod:`.workflows` first.

- :mod:`.workflows`    ``save_workflow`` / ``load_workflow`` / ``save_outputs`` / ``load_outputs``
- :mod:`.carried_code` the code of node functions defined in a notebook or script, stored
                       with the workflow and defined again when it is rebuilt
- :mod:`.recipe_edit`  a rerun's edits of the stored recipe: child inputs by dotted path,
                       SaveNodes kept off the first run's files
- :mod:`._pwf_compat`  a narrow, version-gated fix to pyiron_workflow 0.20 (Literal ports
                       accept matching string constants), applied when the nodes are imported

The node functions themselves (``SaveNode``, ``LoadNode``, ``InspectNode``,
``CollectNode``, the demo's) live at the top of the package, in :mod:`storage_nodes.nodes`,
:mod:`storage_nodes.collection_nodes` and :mod:`storage_nodes.demo`: a stored recipe records
each node's module path, so those modules are public on purpose and do not move. This
layer uses the public API and provenance; the core and the backends never import it.
"""
