"""Provenance: what a file was saved with, and whether today's environment still matches.

Every save records an *environment record* (Python, package versions, git commit and
dirty state, source hashes of the classes and functions it stored); a load compares it
with the current environment under a version policy. Open :mod:`.metadata` first (the
record and how it is built), then :mod:`.versioning` (comparing records, the policies).

- :mod:`.metadata`   the environment record, user metadata, the collector of stored objects
- :mod:`.session_code` code of ``__main__`` and notebook cells: found and hashed from its live source
- :mod:`.gitinfo`    git commit and dirty state, kept while inotify reports no change; read
  from ``.git`` by :mod:`._gitfiles` (HEAD by hand, index and objects with dulwich), or
  asked of the ``git`` program by :mod:`._gitcli` for formats those readers do not know
- :mod:`.picklers`   picklers that record every class and function they meet
- :mod:`.versioning` differences between records, policies, the load-time check

This layer sits under the backends and the API: it imports only the core's ``errors``
and ``_version``, never ``api`` or a backend (the caller reads files and passes records in).
"""
