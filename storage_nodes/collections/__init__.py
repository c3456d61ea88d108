"""Collections: group stored results from many directories, verify them, publish them.

A collection is a JSON manifest naming member files (location, backend, size, sha256,
tags, metadata, environment record); it exports as one checksummed zip with RO-Crate
metadata. Open :mod:`.collection` first (:class:`~.collection.Collection`, the API).

- :mod:`.collection`  the ``Collection`` class: create, add, verify, load, export, unpack
- :mod:`._merge`      merging another collection's members into a manifest
- :mod:`._verify`     verifying members: ``VerifyReport``, its ``Problem`` findings
- :mod:`._manifest`   the manifest format: members, names, locations, its writer lock
- :mod:`._bundle`     the zip bundle: writing, reading, checksums
- :mod:`._rocrate`    the ``ro-crate-metadata.json`` of a bundle
- :mod:`._progress`   progress bars and streamed sha256 for long operations
- :mod:`.cli`         the ``storage-nodes collection ...`` command group

The node ``CollectNode`` lives in :mod:`storage_nodes.collection_nodes`: stored recipes
record that module path. This subsystem uses the public API (``api``, ``registry``) and
provenance; the core never imports it.
"""
