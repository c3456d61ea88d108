"""``python -m storage_nodes ...`` is the ``storage-nodes`` command (e.g. where scripts are not on PATH)."""

import sys

from .cli import main

sys.exit(main())
