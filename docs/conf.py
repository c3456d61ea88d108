"""Sphinx configuration of the storage_nodes docs site.

Build: ``pip install -e ".[docs]"`` then ``sphinx-build -W -b html docs docs/_build/html``.
The pages are the Markdown files of this folder (MyST), the API reference comes from the
docstrings (autodoc), and the quickstart notebook is executed and shown with its outputs
(myst-nb).
"""

from __future__ import annotations

import storage_nodes

project = "storage_nodes"
author = "storage_nodes developers"
copyright = "2026, storage_nodes developers"
release = version = storage_nodes.__version__

extensions = [
    "myst_nb",  # MyST Markdown pages and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links such as [x](nodes.md#whole-workflows) resolve

# the notebook runs at every build (it writes only to a temporary directory), so the site
# shows what this version of the code prints; an error in a cell fails the build
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True

# the pages are also read on GitHub, as plain Markdown: their sub-sub-headings under H2
# (performance.md) and schematic JSON with "..." (format.md) are kept as they are
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

# the theme numpy, pandas and xarray use: a wide content column (code blocks scroll instead of
# being cut off), the sections in a top bar, each page's headings on the right
html_theme = "pydata_sphinx_theme"
html_title = f"storage_nodes {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "header_links_before_dropdown": 5,
}
# the pages are flat (no sections of sections): no left sidebar, a wider column for code
html_sidebars = {"**": []}
