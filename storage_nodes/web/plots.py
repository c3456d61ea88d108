"""Charts drawn on the server with matplotlib, as SVG: a stored array, and the stats' bar charts.

Only numbers reach matplotlib (arrays loaded with ``safe=True``; counts from the catalog),
and the pages show the SVG through ``<img>``, where a browser runs no script. matplotlib
is imported on the first chart, with its non-interactive ``Agg`` machinery (no pyplot, no
display).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ..listing import Entry

__all__ = ["MAX_POINTS", "array_svg", "bars_svg", "plottable"]

#: arrays with more elements than this are listed, not plotted
MAX_POINTS = 1_000_000
#: a 2-D array with at most this many columns is drawn as one line per column; wider ones as an image
LINE_COLUMNS = 8


def plottable(entry: Entry) -> bool:
    """Whether a listed entry is a 1-D or 2-D numeric array small enough to plot."""
    if entry.type != "ndarray" or entry.shape is None or entry.dtype is None:
        return False
    if len(entry.shape) not in (1, 2):
        return False
    import numpy as np

    try:
        kind = np.dtype(entry.dtype).kind
    except (TypeError, ValueError):
        return False
    if kind not in "biuf":
        return False
    size = 1
    for n in entry.shape:
        size *= n
    return 0 < size <= MAX_POINTS


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def array_svg(values: np.ndarray, title: str = "") -> bytes:
    """A 1-D array as a line over its index; a 2-D one as a line per column (up to
    :data:`LINE_COLUMNS` columns) or as an image with a colour bar."""
    import numpy as np

    a = np.asarray(values)
    if a.dtype == bool:
        a = a.astype(np.int8)
    fig = _figure()
    ax = fig.add_subplot()
    if a.ndim == 1:
        ax.plot(np.arange(a.shape[0]), a, marker="." if a.shape[0] <= 100 else None)
        ax.set_xlabel("index")
    elif a.shape[1] <= LINE_COLUMNS:
        for j in range(a.shape[1]):
            ax.plot(np.arange(a.shape[0]), a[:, j], marker="." if a.shape[0] <= 100 else None, label=f"[:, {j}]")
        ax.set_xlabel("row")
        if a.shape[1] > 1:
            ax.legend(fontsize="small")
    else:
        im = ax.imshow(a, aspect="auto", interpolation="nearest")
        fig.colorbar(im, ax=ax)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    if title:
        ax.set_title(title, fontsize="medium")
    return _svg(fig)


def bars_svg(labels: Sequence[str], counts: Sequence[int], title: str) -> bytes:
    """Horizontal bars, one per label, longest first as given."""
    fig = _figure(7.0, max(1.6, 0.3 * len(labels) + 0.8))
    ax = fig.add_subplot()
    positions = list(range(len(labels)))
    ax.barh(positions, list(counts), color="#4a7ab5")
    ax.set_yticks(positions, [str(s) for s in labels], fontsize="small")
    ax.invert_yaxis()
    ax.set_title(title, fontsize="medium")
    return _svg(fig)
