"""Storage backends: turn one Python object into one file and back.

Open :mod:`.base` first: the :class:`~.base.Backend` protocol (``sniff`` / ``write`` /
``read`` / ``list``, optional ``update``) and its capability flags. Then one module per
backend: :mod:`.pickle`, :mod:`.cloudpickle` (both on :mod:`._framed`, a pickle stream
behind a browsable header), :mod:`.json`, and the HDF5 archive :mod:`.h5` (a package).

Backends use the core's base layer and :mod:`storage_nodes.provenance`; they never import
the registry, the API or another backend (see ``docs/architecture.md``). Names are given
to them by :mod:`storage_nodes.registry`.
"""
